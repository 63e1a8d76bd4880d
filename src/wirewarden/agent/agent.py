"""The agent's loop: enrol once, then hold one link to the control plane at a time,
taking its node's state in (snapshot or deltas), letting the host converge to it and
acking what each pass achieved; heartbeats every 10 s; report batches until acked.

The host runs on the held state from the start, whether the control plane answers or
not: tunnels never wait for it. A link that drops is dialled again with jittered
exponential backoff (1 s to 60 s); a refused credential ends the agent with exit code
78 (EX_CONFIG), which its systemd unit does not restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from wirewarden.agent.files import SealedFiles
from wirewarden.agent.held import Held, HeldState, Resync
from wirewarden.agent.host import Host, Pass
from wirewarden.agent.names import NodeFront
from wirewarden.agent.outbox import Outbox
from wirewarden.agent.telemetry import (
    AppSampler,
    CpuMeter,
    ExposeSampler,
    Sampler,
    name_rows,
)
from wirewarden.agent.tunnel import HostPorts, gateways, relay_app
from wirewarden.dataplane.stats import align_window
from wirewarden.domain.state import DeviceDump
from wirewarden.fleet.client import (
    Link,
    Revoked,
    Server,
    TunnelRelay,
    Unreachable,
    enrol,
    open_link,
)
from wirewarden.fleet.protocol import (
    Ack,
    Current,
    Heartbeat,
    Hello,
    ProtocolError,
    ReportAck,
)
from wirewarden.relay.listener import TunnelListener

log = logging.getLogger(__name__)
EXIT_REFUSED = 78  # EX_CONFIG: the unit's RestartPreventExitStatus
CREDENTIAL = "credential"
WAIT_STEP = 0.5  # the longest a thread waits for a pass's dump at a time


class NotEnrolled(Exception):
    """No credential is stored and no join token was given."""

    MESSAGE = (
        "this node is not enrolled: give the join token `wirewarden node add` printed "
        "(--join-token or WIREWARDEN_AGENT_JOIN_TOKEN)"
    )


@dataclass(frozen=True)
class Timing:
    heartbeat: float = 10.0
    report: float = 10.0
    backoff_first: float = 1.0
    backoff_cap: float = 60.0
    # Reconcile passes come at least as often as heartbeats and reports and offer the
    # dump they read: those wait for it (align_window) instead of reading their own.
    align: bool = False


Opener = Callable[[Server, str], Awaitable[Link]]


@dataclass(frozen=True)
class TunnelSetup:
    """The tunnel API this agent serves its peers (agent/tunnel.py): on which port, and
    the ports this host's own sockets hold (never published)."""

    port: int
    host_ports: HostPorts


class Agent:
    def __init__(
        self,
        files: SealedFiles,
        held: HeldState,
        outbox: Outbox,
        server: Server,
        version: str,
        join_token: str | None = None,
        timing: Timing = Timing(),
        opener: Opener = open_link,
        tunnel: TunnelSetup | None = None,
    ) -> None:
        self.files, self.held, self.outbox = files, held, outbox
        self.server, self.version, self.join_token = server, version, join_token
        self.timing, self.opener, self.tunnel = timing, opener, tunnel
        self.sampler, self.cpu = Sampler(), CpuMeter()
        self.app_sampler, self.expose_sampler = AppSampler(), ExposeSampler()
        self.started = time.monotonic()
        self.host: Host | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_pass: Pass | None = None
        self._passed = asyncio.Event()
        # Answers waiting for a pass of their revision (the tunnel API's).
        self._awaited: list[tuple[int, asyncio.Future[None]]] = []
        self.connected = asyncio.Event()
        # Names of this node's peers, served by its own front (agent/names.py).
        self.names = NodeFront(held, held.expose_listen or None)

    # ---- told by the host (its threads)

    def passed(self, result: Pass) -> None:
        self._last_pass = result
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._passed.set)
            loop.call_soon_threadsafe(self._release, result.revision)

    def _release(self, revision: int) -> None:
        waiting = []
        for wanted, future in self._awaited:
            if wanted <= revision:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((wanted, future))
        self._awaited = waiting

    async def reached(self, revision: int, timeout: float) -> bool:
        """Whether a pass of `revision` (or a later one) ran within `timeout` seconds."""
        last = self._last_pass
        if last is not None and last.revision >= revision:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._awaited.append((revision, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self._awaited = [(r, f) for r, f in self._awaited if f is not future]
            return False
        return True

    def ack_due(self) -> None:
        """Look at the last pass again (a link that may not have acked it yet)."""
        self._passed.set()

    async def next_pass(self) -> Pass | None:
        """The last pass, once one ends (or an ack is due again)."""
        await self._passed.wait()
        self._passed.clear()
        return self._last_pass

    async def converge(self, new: Held) -> None:
        """Bring the host to a state just taken in: the changed peers alone when a delta
        named only peers (as `serve` applies one peer), else a whole reconcile pass."""
        assert self.host is not None
        await self.names.follow()
        if new.changes is not None:
            leaf = new.state.desired.policy.leaf_qdisc
            try:
                await asyncio.to_thread(self.host.apply, new.changes, leaf)
            except Exception as exc:  # the whole pass below heals or reports it
                log.warning("revision %d peer by peer failed (%s): reconciling", new.revision, exc)
            else:
                log.info("revision %d applied peer by peer", new.revision)
                last = self._last_pass or Pass(new.revision, True, None)
                self.passed(Pass(new.revision, last.in_sync, last.error))
                return
        log.info("state at revision %d taken in: reconciling", new.revision)
        self.host.trigger()

    # ---- the whole life

    async def run(self, host: Host) -> int:
        """Run until the control plane refuses this node; the exit code."""
        self.host, self._loop = host, asyncio.get_running_loop()
        saved = await asyncio.to_thread(self.files.read, CREDENTIAL)
        if not isinstance(saved, dict) and not self.join_token:
            # Said before anything touches the kernel.
            log.error("%s", NotEnrolled.MESSAGE)
            return EXIT_REFUSED
        held = await asyncio.to_thread(self.held.load)
        if held is not None:
            log.info("applying the saved state (revision %d) first", held.revision)
        await asyncio.to_thread(host.start)
        collecting = asyncio.create_task(self._collect())
        tunnel: tuple[TunnelListener, TunnelRelay] | None = None
        try:
            await self.names.follow()
            node, credential = await self._identity()
            tunnel = self._serve_tunnel(credential)
            log.info("node %s: dialling %s", node, self.server.url)
            while True:
                await self._one_link(node, credential)
        except Revoked as exc:
            log.error("%s: this node's credential or join token is refused; stopping", exc)
            return EXIT_REFUSED
        except NotEnrolled as exc:
            log.error("%s", exc)
            return EXIT_REFUSED
        finally:
            if tunnel is not None:
                listener, relay = tunnel
                await listener.stop()
                await relay.close()
            await self.names.stop()
            collecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collecting
            await asyncio.to_thread(self.outbox.seal)
            await asyncio.to_thread(host.stop)

    def _serve_tunnel(self, credential: str) -> tuple[TunnelListener, TunnelRelay] | None:
        """The tunnel API on this node's gateways, relayed to the control plane."""
        if self.tunnel is None:
            return None
        relay = TunnelRelay(self.server, credential)
        app = relay_app(relay.call, self.tunnel.host_ports, self.reached)

        def held_gateways() -> frozenset[str]:
            held = self.held.held
            return gateways(held.state.desired if held is not None else None)

        listener = TunnelListener(app, held_gateways, self.tunnel.port)
        listener.start()
        return listener, relay

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            wait=wait_exponential_jitter(
                multiplier=self.timing.backoff_first, max=self.timing.backoff_cap
            ),
            retry=retry_if_exception_type(Unreachable),
            before_sleep=lambda state: log.warning(
                "control plane unreachable (%s); again in %.1f s",
                state.outcome.exception() if state.outcome else "?",
                state.next_action.sleep if state.next_action else 0,
            ),
            reraise=True,
        )

    async def _identity(self) -> tuple[str, str]:
        saved: Any = await asyncio.to_thread(self.files.read, CREDENTIAL)
        if isinstance(saved, dict) and saved.get("credential"):
            return str(saved["node"]), str(saved["credential"])
        if not self.join_token:
            raise NotEnrolled(NotEnrolled.MESSAGE)
        node: str
        credential: str
        node, credential = await self._retrying()(enrol, self.server, self.join_token, self.version)
        record = {"node": node, "credential": credential, "server": self.server.url}
        await asyncio.to_thread(self.files.write, CREDENTIAL, record)
        await asyncio.to_thread(self.outbox.restart)
        log.info("enrolled as node %s", node)
        return node, credential

    async def _one_link(self, node: str, credential: str) -> None:
        link: Link = await self._retrying()(self.opener, self.server, credential)
        log.info("connected to the control plane (%s)", link.kind)
        try:
            await self._session(link, node)
        except Unreachable as exc:
            log.warning("link lost: %s", exc)
        finally:
            self.connected.clear()
            with contextlib.suppress(Exception):
                await link.close()
        # A control plane that takes the link and drops it at once is not dialled in a loop.
        await asyncio.sleep(random.uniform(0.5, 1.5) * self.timing.backoff_first)  # noqa: S311

    async def _session(self, link: Link, node: str) -> None:
        session = _Session(self, link, node)
        await session.hello()
        self.connected.set()
        tasks = [
            asyncio.create_task(session.receive()),
            asyncio.create_task(session.beat()),
            asyncio.create_task(session.report()),
            asyncio.create_task(session.ack()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _collect(self) -> None:
        """Traffic samples into the outbox every report period, linked or not (what is
        measured while the control plane is away is sent when it returns)."""
        clock = asyncio.get_running_loop().time
        taken, due = 0.0, clock()
        while True:
            try:
                dumps, taken = await self.dump_due(taken, due, self.timing.report)
                due = clock() + self.timing.report
                rows = self.sampler.samples(taken, dumps)
                if rows:
                    self.outbox.add(samples=rows)
                await self._collect_apps()
                await self._collect_names()
                await asyncio.to_thread(self.outbox.seal)
            except Exception:  # a dump that fails now may not next time; tunnels go on
                log.exception("collecting traffic samples failed")
                due = clock() + self.timing.report

    async def dump_due(
        self, after: float, due: float, period: float
    ) -> tuple[dict[str, DeviceDump], float]:
        """The dump for a loop due at `due` (the event loop's clock) every `period`, which
        last used the one read at wall-clock `after`, and its time. Beside passes as
        frequent (Timing.align), the pass's dump when one comes within the window around
        `due`, so a node with 10,000 peers asks its wireguard-go once a period, not three
        times; else one read when due."""
        assert self.host is not None
        host, clock = self.host, asyncio.get_running_loop().time
        if not (after and self.timing.align):
            await asyncio.sleep(max(0.0, due - clock()))
            return await asyncio.to_thread(host.dumps)
        early, late = align_window(period)
        await asyncio.sleep(max(0.0, due - early - clock()))
        # In steps: a thread blocked in a wait outlives the task that started it.
        while (left := due + late - clock()) > 0:
            if await asyncio.to_thread(host.wait_dump, after, min(left, WAIT_STEP)):
                break
        return await asyncio.to_thread(host.dumps)

    async def _collect_apps(self) -> None:
        assert self.host is not None
        try:
            counts = await asyncio.to_thread(self.host.kernel_counts)
        except Exception:  # no table yet: nothing classified to tell
            log.debug("classified traffic not read", exc_info=True)
            return
        now = time.time()
        rows = self.app_sampler.rows(now, counts)
        exposed = self.expose_sampler.rows(now, counts)
        if rows or exposed:
            self.outbox.add(apps=rows, exposed=exposed)

    async def _collect_names(self) -> None:
        assert self.host is not None
        names = name_rows(time.time(), await asyncio.to_thread(self.host.names))
        if names:
            self.outbox.add(names=names)


class _Session:
    """One link's conversation."""

    def __init__(self, agent: Agent, link: Link, node: str) -> None:
        self.agent, self.link, self.node = agent, link, node
        self.sent_ack: tuple[int, str, bool, str | None] | None = None
        self.in_flight: set[int] = set()
        self.beats = Sampler()

    async def hello(self) -> None:
        held = self.agent.held.held
        await self.link.send(
            Hello(
                node=self.node,
                version=self.agent.version,
                revision=held.revision if held else 0,
                hash=held.hash if held else "",
            )
        )

    async def receive(self) -> None:
        agent = self.agent
        while True:
            message = await self.link.receive()
            if isinstance(message, ReportAck):
                await self._acked(message)
                continue
            try:
                new = await asyncio.to_thread(agent.held.take, message)
            except Resync as exc:
                log.warning("resync: %s", exc)
                await self.hello()
                continue
            except ProtocolError as exc:
                raise Unreachable(f"the control plane sent a state that is not one: {exc}") from exc
            if new is not None:
                await agent.converge(new)
                await asyncio.to_thread(agent.held.save)
            elif isinstance(message, Current):
                agent.ack_due()  # the last pass's ack may be due on this link

    async def _acked(self, message: ReportAck) -> None:
        self.in_flight.discard(message.seq)
        await asyncio.to_thread(self.agent.outbox.acked, message.seq)

    async def ack(self) -> None:
        agent = self.agent
        agent.ack_due()
        while True:
            result = await agent.next_pass()
            held = agent.held.held
            if result is None or held is None or result.revision != held.revision:
                continue  # a pass of an earlier state: the one of this state follows
            key = (held.revision, held.hash, result.in_sync, result.error)
            if key == self.sent_ack:
                continue
            await self.link.send(
                Ack(
                    revision=held.revision,
                    hash=held.hash,
                    in_sync=result.in_sync,
                    error=(result.error or "")[:2000] or None,
                )
            )
            self.sent_ack = key

    async def beat(self) -> None:
        agent = self.agent
        assert agent.host is not None
        clock = asyncio.get_running_loop().time
        taken, due = 0.0, clock()
        while True:
            dumps, taken = await agent.dump_due(taken, due, agent.timing.heartbeat)
            due = clock() + agent.timing.heartbeat
            busy, total = await asyncio.to_thread(agent.host.cpu_times)
            load = self.beats.load(taken, dumps)
            await self.link.send(
                Heartbeat(
                    peers=load.peers,
                    online_peers=load.online_peers,
                    rx_bps=load.rx_bps,
                    tx_bps=load.tx_bps,
                    cpu_percent=agent.cpu.percent(busy, total),
                    version=agent.version,
                    uptime_s=int(time.monotonic() - agent.started),
                )
            )

    async def report(self) -> None:
        while True:
            batches = await asyncio.to_thread(self.agent.outbox.batches)
            for batch in batches:
                if batch.seq in self.in_flight:
                    continue
                self.in_flight.add(batch.seq)
                answer = await self.link.send(batch)
                if answer is not None:
                    await self._acked(answer)
            await asyncio.sleep(self.agent.timing.report)

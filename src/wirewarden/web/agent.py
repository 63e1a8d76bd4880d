"""The agent endpoint (docs/fleet.md): enrolment, the WebSocket, the long-poll fallback.

A node's agent authenticates with its node credential (`Authorization: Bearer wwn_...`);
it reads only its own node's state and writes only its own status and reports. Each
session remembers the document it last sent; a wake (a commit naming the node, here or
on another replica through LISTEN/NOTIFY) reads the node's state again and sends the
difference. A session whose credential is gone when it wakes is closed with 4401.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, WebSocket, status
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from wirewarden.bootstrap import Container
from wirewarden.domain.statediff import Document, advance, diff, digest
from wirewarden.fleet.protocol import (
    CLOSE_PROTOCOL,
    CLOSE_REVOKED,
    TUNNEL_PATH,
    VERSION,
    Ack,
    Current,
    Delta,
    Heartbeat,
    Hello,
    NodeState,
    ProtocolError,
    Report,
    ReportAck,
    Snapshot,
    decode_from_agent,
    encode,
    state_patch,
    to_document,
)
from wirewarden.services import nodes as node_service
from wirewarden.services.node_schemas import Enrolled, Enrolment
from wirewarden.services.nodes import NodeIdentity
from wirewarden.store.fleet import Listener, is_postgresql
from wirewarden.web.deps import App, app_of, source_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["agent"])
# Where an agent relays its peers' tunnel API requests (web/tunnel.py).
TUNNEL_PREFIX = "/api/v1" + TUNNEL_PATH

# Initial snapshots built at once on this replica: a restart of the control plane, with
# every agent reconnecting, does not build a thousand documents side by side.
MAX_SNAPSHOTS = 8
# Documents kept per node for long-poll deltas (an agent holding one of them gets a delta);
# each is the whole state (tens of MB at 10,000 peers), so few.
RECENT = 2
NODE_STATE = "wirewarden.node"
# How often a long-poll with nothing to say checks that its agent is still there.
POLL_CHECK = 1.0
Hash = Annotated[str, Query(max_length=64, pattern=r"^[0-9a-f]*$")]


class AgentHub:
    """This replica's agent sessions by node, and what wakes them."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.loop: asyncio.AbstractEventLoop | None = None
        self.events: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.snapshots = asyncio.Semaphore(MAX_SNAPSHOTS)
        self.recent: dict[str, OrderedDict[tuple[int, str], Document]] = {}
        self.listener: Listener | None = None
        # An app may be started again while running (a test's second client): once is enough.
        self._starts = 0

    def start(self) -> None:
        self._starts += 1
        if self._starts > 1:
            return
        self.loop = asyncio.get_running_loop()
        self.container.wakes.subscribe(self._from_thread)
        engine = self.container.engine
        if is_postgresql(engine):
            url = engine.url.render_as_string(hide_password=False)
            self.listener = Listener(url, self.container.wakes, self.container.nodes.names)
            self.listener.start()

    async def stop(self) -> None:
        self._starts -= 1
        if self._starts > 0:
            return
        self.container.wakes.unsubscribe(self._from_thread)
        if self.listener is not None:
            await run_in_threadpool(self.listener.stop)
            self.listener = None
        self.loop = None

    def _from_thread(self, names: Iterable[str]) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.wake, frozenset(names))

    def wake(self, names: Iterable[str]) -> None:
        for name in names:
            for event in self.events.get(name, ()):
                event.set()

    def watch(self, node: str) -> asyncio.Event:
        event = asyncio.Event()
        self.events[node].add(event)
        return event

    def unwatch(self, node: str, event: asyncio.Event) -> None:
        watchers = self.events.get(node)
        if watchers is not None:
            watchers.discard(event)
            if not watchers:
                del self.events[node]

    def remember(self, node: str, revision: int, hash_: str, doc: Document) -> None:
        kept = self.recent.setdefault(node, OrderedDict())
        kept[(revision, hash_)] = doc
        kept.move_to_end((revision, hash_))
        while len(kept) > RECENT:
            kept.popitem(last=False)

    def recalled(self, node: str, revision: int, hash_: str) -> Document | None:
        kept = self.recent.get(node)
        return None if kept is None else kept.get((revision, hash_))

    def read(self, node: str) -> tuple[int, Document, str, NodeState]:
        """The node's state document now, with its revision, digest and the state itself
        (blocking)."""
        state = self.container.states.read(node)
        doc = to_document(state)
        return state.desired.revision, doc, digest(doc), state

    def read_since(
        self, node: str, doc: Document, hash_: str, held: NodeState | None
    ) -> tuple[int, Document, str, Document, NodeState] | None:
        """The node's state as a patch of `doc` (whose state is `held`): (revision, new
        doc, its digest, patch, new state), or None when nothing changed (blocking)."""
        state = self.container.states.read(node)
        change = state_patch(held, state) if held is not None else None
        if change is None:
            # More than peers changed: the documents' diff, at the cost of every peer.
            change = diff(doc, to_document(state))
        if not change:
            return None
        # The new document and its digest at the cost of the patch, not of 10,000 peers.
        new, new_hash = advance(doc, hash_, change)
        return state.desired.revision, new, new_hash, change, state


def hub_of(conn: HTTPConnection) -> AgentHub:
    found: AgentHub = conn.app.state.agents
    return found


def _credential(conn: HTTPConnection) -> str | None:
    scheme, value = get_authorization_scheme_param(conn.headers.get("authorization"))
    return value if scheme.lower() == "bearer" and value else None


async def identify_node(conn: HTTPConnection) -> NodeIdentity | None:
    """The node a request's credential names (None: none, unknown or revoked); kept in
    the request's state, so the body gate's check and the route's cost one read."""
    state: dict[str, object] = conn.scope.setdefault("state", {})
    if NODE_STATE in state:
        return state[NODE_STATE]  # type: ignore[return-value]
    credential = _credential(conn)
    found = None
    if credential is not None:
        found = await run_in_threadpool(app_of(conn).nodes.authenticate, credential)
    state[NODE_STATE] = found
    return found


async def _node(conn: HTTPConnection) -> NodeIdentity:
    node = await identify_node(conn)
    if node is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return node


@router.post("/agent/enrol")
def enrol(app: App, request: Request, body: Enrolment) -> Enrolled:
    """Trade a one-time join token for the node's credential (shown this once)."""
    node, credential = app.nodes.enrol(body.join_token, body.version, source_of(request))
    return Enrolled(node=node, credential=credential)


class AgentSession:
    """One agent connection: what it was last sent, and the answers to what it sends."""

    def __init__(
        self, hub: AgentHub, node: NodeIdentity, send: Callable[[str], Awaitable[None]]
    ) -> None:
        self.hub, self.node, self.send = hub, node, send
        self.revision, self.hash = 0, ""
        self.doc: Document | None = None
        self.state: NodeState | None = None

    async def handle(self, message: Hello | Ack | Heartbeat | Report) -> None:
        if isinstance(message, Hello):
            await self.resync(message)
        elif isinstance(message, Report):
            await self.send(encode(await report(self.hub.container, self.node, message)))
        else:
            await record(self.hub, self.node, message, self._matches)

    def _matches(self, revision: int, hash_: str) -> bool:
        return (revision, hash_) == (self.revision, self.hash) or (
            self.hub.recalled(self.node.name, revision, hash_) is not None
        )

    async def resync(self, hello: Hello) -> None:
        if hello.node != self.node.name:
            raise ProtocolError(f"node: this credential is node {self.node.name!r}'s")
        if hello.protocol != VERSION:
            raise ProtocolError(f"protocol: this control plane speaks version {VERSION}")
        async with self.hub.snapshots:
            revision, doc, hash_, state = await run_in_threadpool(self.hub.read, self.node.name)
            if (hello.revision, hello.hash) == (revision, hash_):
                await self.send(encode(Current(revision=revision, hash=hash_)))
            else:
                await self.send(encode(Snapshot(revision=revision, hash=hash_, state=doc)))
        self.revision, self.hash, self.doc, self.state = revision, hash_, doc, state
        self.hub.remember(self.node.name, revision, hash_, doc)

    async def push(self) -> None:
        """Send what changed since the last document (nothing before the agent's hello)."""
        if self.doc is None:
            return
        found = await run_in_threadpool(
            self.hub.read_since, self.node.name, self.doc, self.hash, self.state
        )
        if found is None:
            return
        revision, doc, hash_, change, self.state = found
        await self.send(
            encode(Delta(base=self.revision, revision=revision, hash=hash_, patch=change))
        )
        self.revision, self.hash, self.doc = revision, hash_, doc
        self.hub.remember(self.node.name, revision, hash_, doc)


async def record(
    hub: AgentHub,
    node: NodeIdentity,
    message: Ack | Heartbeat,
    matches: Callable[[int, str], bool],
) -> None:
    nodes = hub.container.nodes
    if isinstance(message, Heartbeat):
        beat = node_service.Heartbeat(
            message.peers,
            message.online_peers,
            message.rx_bps,
            message.tx_bps,
            message.cpu_percent,
            message.version,
            message.uptime_s,
        )
        await run_in_threadpool(nodes.heartbeat, node, beat)
    else:
        ack = node_service.Ack(
            message.revision,
            message.hash,
            message.in_sync,
            message.error,
            matches(message.revision, message.hash),
        )
        await run_in_threadpool(nodes.ack, node, ack)


async def report(container: Container, node: NodeIdentity, message: Report) -> ReportAck:
    """Store a report once (a batch sent again after a lost answer is only acked)."""

    def store() -> None:
        if container.nodes.report_seen(node, message.seq):
            return
        done = container.reports.ingest(
            node.name,
            message.samples,
            message.dns_log,
            dict(message.quotas),
            message.apps,
            message.names,
            message.exposed,
        )
        container.nodes.record_quotas(node, message.seq, done.quotas)

    await run_in_threadpool(store)
    return ReportAck(seq=message.seq)


@router.websocket("/agent/ws")
async def agent_socket(socket: WebSocket) -> None:
    hub = hub_of(socket)
    node = await identify_node(socket)
    credential = _credential(socket) or ""
    await socket.accept()
    if node is None:
        await socket.close(CLOSE_REVOKED, "missing, unknown or revoked node credential")
        return
    event = hub.watch(node.name)
    session = AgentSession(hub, node, socket.send_text)
    received: asyncio.Future[str] = asyncio.ensure_future(socket.receive_text())
    woken: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
    try:
        while True:
            done, _ = await asyncio.wait({received, woken}, return_when=asyncio.FIRST_COMPLETED)
            if received in done:
                try:
                    await session.handle(decode_from_agent(received.result()))
                except ProtocolError as exc:
                    await socket.close(CLOSE_PROTOCOL, str(exc)[:120])
                    return
                received = asyncio.ensure_future(socket.receive_text())
            if woken in done:
                # Wakes that arrive while this one is read fold into the next read.
                event.clear()
                still = await run_in_threadpool(hub.container.nodes.authenticate, credential)
                if still != node:
                    await socket.close(CLOSE_REVOKED, "node credential revoked")
                    return
                await session.push()
                woken = asyncio.ensure_future(event.wait())
    except WebSocketDisconnect:
        pass
    finally:
        received.cancel()
        woken.cancel()
        hub.unwatch(node.name, event)


@router.get("/agent/state")
async def agent_state(
    request: Request,
    revision: Annotated[int, Query(ge=0)] = 0,
    hash: Hash = "",
    wait: Annotated[float, Query(ge=0, le=60)] = 25,
) -> Response:
    """The long-poll fallback: the node's state as a snapshot, a delta of the document
    at `revision`/`hash`, or `current` when nothing changed within `wait` seconds."""
    node = await _node(request)
    hub = hub_of(request)
    event = hub.watch(node.name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    try:
        while True:
            now, doc, digest_, _ = await run_in_threadpool(hub.read, node.name)
            left = deadline - loop.time()
            if (now, digest_) != (revision, hash) or left <= 0:
                break
            try:
                # A second at a time: an agent that went away is let go of (a replica
                # stopping gracefully would otherwise wait out every hanging poll).
                await asyncio.wait_for(event.wait(), min(left, POLL_CHECK))
            except TimeoutError:
                if await request.is_disconnected():
                    return Response(status_code=499)
                continue
            event.clear()
            credential = _credential(request) or ""
            if await run_in_threadpool(hub.container.nodes.authenticate, credential) != node:
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, "node credential revoked")
    finally:
        hub.unwatch(node.name, event)
    hub.remember(node.name, now, digest_, doc)
    return _json(_answer(hub, node.name, revision, hash, now, doc, digest_))


def _answer(
    hub: AgentHub, node: str, revision: int, hash_: str, now: int, doc: Document, digest_: str
) -> Current | Delta | Snapshot:
    if (now, digest_) == (revision, hash_):
        return Current(revision=now, hash=digest_)
    held = hub.recalled(node, revision, hash_)
    if held is not None:
        return Delta(base=revision, revision=now, hash=digest_, patch=diff(held, doc))
    return Snapshot(revision=now, hash=digest_, state=doc)


@router.post("/agent/messages")
async def agent_messages(request: Request) -> Response:
    """An ack, heartbeat or report of the long-poll fallback (one message a request)."""
    node = await _node(request)
    hub = hub_of(request)
    try:
        message = decode_from_agent(await request.body())
    except ProtocolError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if isinstance(message, Hello):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "type: hello opens a WebSocket session; long-poll GET /api/v1/agent/state",
        )
    if isinstance(message, Report):
        return _json(await report(hub.container, node, message))

    def matches(revision: int, hash_: str) -> bool:
        return hub.recalled(node.name, revision, hash_) is not None

    await record(hub, node, message, matches)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _json(message: Current | Delta | Snapshot | ReportAck) -> Response:
    return Response(encode(message), media_type="application/json")

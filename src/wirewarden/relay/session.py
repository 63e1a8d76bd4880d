"""`wirewarden expose`: register mappings with the tunnel API, relay to the local services,
heartbeat every 20 s, and remove everything when stopped."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from wirewarden.domain.exposure import HEARTBEAT, MappingSpec, NameSpec
from wirewarden.relay.relays import TcpRelay, UdpRelay
from wirewarden.relay.tunnel import source_towards

Say = Callable[[str], None]


class ExposeFailed(Exception):
    """The server refused or could not be reached; the message says why."""


class Unreachable(ExposeFailed):
    """No answer from the tunnel API (the tunnel, or the server's listener, not up yet)."""


# How long a starting client waits for the tunnel API: a tunnel just brought up, or a
# gateway the server's listener binds a moment later, answers within seconds.
START_WAIT_SECONDS = 20.0


TLS_PROBE_SECONDS = 3.0
Spec = MappingSpec | NameSpec


@dataclass
class Published:
    spec: Spec
    relay: TcpRelay | UdpRelay | None
    local_port: int
    mapping_id: int | None = None
    tls: bool = False

    def body(self) -> tuple[str, dict[str, object]]:
        """Where it is registered, and what with."""
        if isinstance(self.spec, NameSpec):
            return "/names", {
                "name": self.spec.name,
                "local_port": self.local_port,
                "tls": self.tls,
            }
        spec = self.spec
        return "/mappings", {
            "proto": spec.proto,
            "remote_port": spec.remote_port,
            "local_port": self.local_port,
        }


async def speaks_tls(host: str, port: int) -> bool:
    """The local service answers a TLS handshake (its certificate is not judged here: the
    visitor's browser does that, the server passes the bytes through)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), TLS_PROBE_SECONDS
        )
    except (OSError, ssl.SSLError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return True


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return str(detail)


class ExposeSession:
    def __init__(self, specs: Sequence[Spec], gateway: str, port: int, say: Say) -> None:
        self.specs, self.gateway, self.port, self.say = list(specs), gateway, port, say
        self.published: list[Published] = []

    async def run(self) -> None:
        """Until cancelled (Ctrl-C, SIGTERM): then the mappings go at once."""
        tunnel_ip = source_towards(self.gateway, self.port)
        base = f"http://{self.gateway}:{self.port}/v1"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            try:
                who = await self._whoami(http)
                self.say(f"peer {who['peer']} on {who['interface']} ({tunnel_ip})")
                for spec in self.specs:
                    await self._publish(http, spec, tunnel_ip)
                while True:
                    await asyncio.sleep(HEARTBEAT.total_seconds())
                    await self._heartbeat(http)
            finally:
                await self._withdraw(http)

    async def _whoami(self, http: httpx.AsyncClient) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_WAIT_SECONDS
        while True:
            try:
                return await self._call(http, "GET", "/whoami")
            except Unreachable:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(0.5)

    async def _call(
        self, http: httpx.AsyncClient, method: str, path: str, **kw: Any
    ) -> dict[str, Any]:
        try:
            response = await http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise Unreachable(
                f"cannot reach the tunnel API at {self.gateway}:{self.port} ({exc}); "
                "is the tunnel up? (--via GATEWAY names the server's tunnel address)"
            ) from exc
        if response.status_code >= 400:
            raise ExposeFailed(_detail(response))
        found: dict[str, Any] = response.json() if response.content else {}
        return found

    async def _publish(self, http: httpx.AsyncClient, spec: Spec, tunnel_ip: str) -> None:
        relay: TcpRelay | UdpRelay | None = None
        proto = spec.proto if isinstance(spec, MappingSpec) else "tcp"
        if spec.local_host == tunnel_ip:
            local_port = spec.local_port  # the service listens on the tunnel address itself
        else:
            relay = (TcpRelay if proto == "tcp" else UdpRelay)(
                tunnel_ip, (spec.local_host, spec.local_port)
            )
            local_port = await relay.start()
        item = Published(spec, relay, local_port)
        if isinstance(spec, NameSpec):
            item.tls = await speaks_tls(spec.local_host, spec.local_port)
        self.published.append(item)
        made = await self._register(http, item)
        where = (
            str(made.get("url") or made.get("hostname"))
            if isinstance(spec, NameSpec)
            else f"{proto} port {spec.remote_port} of the server"
        )
        self.say(f"{where} -> {spec.local_host}:{spec.local_port}")

    async def _register(self, http: httpx.AsyncClient, item: Published) -> dict[str, Any]:
        path, body = item.body()
        try:
            made = await self._call(http, "POST", path, json=body)
        except ExposeFailed as exc:
            raise ExposeFailed(f"{item.spec}: {exc}") from exc
        item.mapping_id = int(made["id"])
        return made

    async def _heartbeat(self, http: httpx.AsyncClient) -> None:
        try:
            beat = await self._call(http, "POST", "/heartbeat")
            if int(beat.get("renewed", 0)) < len(self.published):
                # Leases ran out while the server or the tunnel was away: take them again.
                live = {m["id"] for m in await self._list(http)}
                for item in self.published:
                    if item.mapping_id not in live:
                        await self._register(http, item)
        except ExposeFailed as exc:
            self.say(f"heartbeat: {exc} (retrying)")

    async def _list(self, http: httpx.AsyncClient) -> list[dict[str, Any]]:
        response = await http.get("/mappings")
        found: list[dict[str, Any]] = response.json() if response.status_code == 200 else []
        return found

    async def _withdraw(self, http: httpx.AsyncClient) -> None:
        with contextlib.suppress(httpx.HTTPError):
            await http.delete("/mappings")
        for item in self.published:
            if item.relay is not None:
                await item.relay.close()


def run(session: ExposeSession) -> None:
    """Runs the session until SIGINT or SIGTERM; raises ExposeFailed on a refusal."""

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
        with contextlib.suppress(asyncio.CancelledError):
            await session.run()

    asyncio.run(main())

"""A small ASGI app served on a node's gateway addresses, and only there: the tunnel API,
in `serve` (web/tunnel.py) and in a fleet node's agent (agent/tunnel.py). The set of
addresses follows the node's interfaces; a gateway not up yet is bound all the same."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Generator

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)
# Linux's IP_FREEBIND / IPV6_FREEBIND: bind a gateway address before its link is up, so
# the listener need not wait for the reconciler (the stdlib names only the first).
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
IPV6_FREEBIND = 78


class _Embedded(uvicorn.Server):
    """A uvicorn server inside `serve`'s loop: the signals stay the main server's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(address: str, port: int) -> socket.socket:
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if ip.version == 6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    sock.bind((address, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class TunnelListener:
    """Keeps the tunnel API listening on exactly the gateway addresses there are: looks
    every `period` seconds (off the loop) and rebinds when they changed."""

    def __init__(
        self,
        app: ASGIApp,
        gateways: Callable[[], frozenset[str]],
        port: int,
        period: float = 2.0,
    ) -> None:
        self.app, self.gateways, self.port, self.period = app, gateways, port, period
        self._task: asyncio.Task[None] | None = None
        self.bound: frozenset[str] = frozenset()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        server: _Embedded | None = None
        serving: asyncio.Task[None] | None = None
        try:
            while True:
                wanted = await asyncio.to_thread(self.gateways)
                if wanted != self.bound:
                    if server is not None and serving is not None:
                        server.should_exit = True
                        await serving
                    server, serving = self._serve(wanted)
                await asyncio.sleep(self.period)
        finally:
            if server is not None and serving is not None:
                server.should_exit = True
                await serving
            self.bound = frozenset()

    def _serve(
        self, addresses: frozenset[str]
    ) -> tuple[_Embedded | None, asyncio.Task[None] | None]:
        sockets = []
        for address in sorted(addresses):
            try:
                sockets.append(bind(address, self.port))
            except OSError as exc:
                log.warning("tunnel API: cannot listen on %s:%d: %s", address, self.port, exc)
        self.bound = addresses
        if not sockets:
            return None, None
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            limit_concurrency=256,
            timeout_keep_alive=30,
        )
        server = _Embedded(config)
        return server, asyncio.get_running_loop().create_task(server.serve(sockets=sockets))

"""The tunnel API (expose): where a peer's `wirewarden expose` registers its mappings.

It listens on every gateway address of this node's interfaces, and only there (port
WIREWARDEN_TUNNEL_API_PORT). A request acts for the peer whose tunnel address it came from,
at the gateway it reached: WireGuard accepts a packet from a peer only with a source inside
that peer's AllowedIPs, so the address pair names the peer. Nothing in a body does (the
body models forbid extra fields: a client that names an address gets a 422).

Versioned under /v1 and documented in docs/expose.md, so other clients can be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Generator
from datetime import datetime

import uvicorn
from fastapi import FastAPI, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from wirewarden.services.errors import ServiceError
from wirewarden.services.mappings import MappingService, Origin
from wirewarden.services.schemas import MappingIn, MappingOut, NameIn
from wirewarden.web.changes import ChangeThread

log = logging.getLogger(__name__)
VERSION = "v1"
# Linux's IP_FREEBIND / IPV6_FREEBIND: bind a gateway address before its link is up, so
# the listener need not wait for the reconciler (the stdlib names only the first).
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
IPV6_FREEBIND = 78


class Renewed(BaseModel):
    renewed: int
    expires_at: datetime


class Removed(BaseModel):
    removed: int


def _origin(request: Request) -> Origin:
    server, client = request.scope.get("server"), request.client
    if not server or client is None:  # not over a socket of ours: no peer to act for
        raise ServiceError("no tunnel address")
    return str(server[0]), client.host


def tunnel_app(mappings: MappingService, changes: ChangeThread) -> FastAPI:
    app = FastAPI(title="WireWarden tunnel API", docs_url=None, redoc_url=None)

    @app.get(f"/{VERSION}/whoami")
    def whoami(request: Request) -> dict[str, object]:
        return mappings.whoami(_origin(request))

    @app.get(f"/{VERSION}/mappings")
    def mine(request: Request) -> list[MappingOut]:
        return mappings.mine(_origin(request))

    @app.post(f"/{VERSION}/mappings", status_code=status.HTTP_201_CREATED)
    async def register(request: Request, body: MappingIn) -> MappingOut:
        return await changes.run(mappings.register, _origin(request), body)

    @app.post(f"/{VERSION}/names", status_code=status.HTTP_201_CREATED)
    async def register_name(request: Request, body: NameIn) -> MappingOut:
        return await changes.run(mappings.register_name, _origin(request), body)

    @app.post(f"/{VERSION}/heartbeat")
    async def heartbeat(request: Request) -> Renewed:
        renewed, until = await changes.run(mappings.renew, _origin(request))
        return Renewed(renewed=renewed, expires_at=until)

    @app.delete(f"/{VERSION}/mappings")
    async def remove_all(request: Request) -> Removed:
        return Removed(removed=await changes.run(mappings.unregister, _origin(request)))

    @app.delete(f"/{VERSION}/mappings/{{mapping_id}}")
    async def remove_one(request: Request, mapping_id: int) -> Response:
        await changes.run(mappings.unregister, _origin(request), mapping_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @app.exception_handler(ServiceError)
    async def _error(_: Request, exc: ServiceError) -> JSONResponse:
        body = {"detail": exc.message, **({"field": exc.field} if exc.field else {})}
        return JSONResponse(body, status_code=exc.status)

    return app


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
        app: FastAPI,
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

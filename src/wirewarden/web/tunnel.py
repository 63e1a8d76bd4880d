"""The tunnel API (expose): where a peer's `wirewarden expose` registers its mappings.

It listens on every gateway address of this node's interfaces, and only there (port
WIREWARDEN_TUNNEL_API_PORT; relay/listener.py). A request acts for the peer whose tunnel
address it came from, at the gateway it reached: WireGuard accepts a packet from a peer
only with a source inside that peer's AllowedIPs, so the address pair names the peer.
Nothing in a body does (the body models forbid extra fields: a client that names an
address gets a 422).

In a fleet, a node's agent serves the same API on its own gateways and relays each
request here (`/api/v1/agent/tunnel/v1/...`) with its node credential, saying in two
headers which address pair the connection had. The credential decides the node: an agent
acts only for the peers of its own node, whatever the headers say. Its answers carry the
node's revision after the change, so the agent answers its peer once its kernel has it.

Versioned under /v1 and documented in docs/expose.md, so other clients can be written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from wirewarden.fleet.protocol import GATEWAY_HEADER, REVISION_HEADER, SOURCE_HEADER
from wirewarden.services.errors import Invalid, ServiceError, Unauthorized
from wirewarden.services.mappings import MappingService, Origin
from wirewarden.services.schemas import MappingIn, MappingOut, NameIn
from wirewarden.web.changes import ChangeThread

VERSION = "v1"
OriginOf = Callable[[Request], Awaitable[Origin]]
IdentifyNode = Callable[[HTTPConnection], Awaitable[object | None]]


class Renewed(BaseModel):
    renewed: int
    expires_at: datetime


class Removed(BaseModel):
    removed: int


def socket_origin(node: str) -> OriginOf:
    """The connection's own addresses, on this node: the tunnel API's listener."""

    async def origin(request: Request) -> Origin:
        server, client = request.scope.get("server"), request.client
        if not server or client is None:  # not over a socket of ours: no peer to act for
            raise ServiceError("no tunnel address")
        return Origin(str(server[0]), client.host, node)

    return origin


def relayed_origin(identify: IdentifyNode) -> OriginOf:
    """The address pair an agent relays, on the node its credential names."""

    async def origin(request: Request) -> Origin:
        node = await identify(request)
        name = getattr(node, "name", None)
        if not isinstance(name, str):
            raise Unauthorized("missing or invalid node credentials")
        return Origin(_address(request, GATEWAY_HEADER), _address(request, SOURCE_HEADER), name)

    return origin


def _address(request: Request, header: str) -> str:
    value = request.headers.get(header, "")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise Invalid(f"{header}: an IP address, not {value[:64]!r}", header) from exc


async def _origin(request: Request) -> Origin:
    found: Origin = await request.app.state.origin_of(request)
    return found


# A dependency, so it is settled before the body is read: no credential is a 401 first.
From = Annotated[Origin, Depends(_origin)]


def tunnel_app(
    mappings: MappingService,
    changes: ChangeThread,
    origin_of: OriginOf,
    tell_revision: bool = False,
) -> FastAPI:
    """The API. `tell_revision`: answers to a change say the node's revision after it
    (for an agent, which waits for its kernel to hold it)."""
    app = FastAPI(title="WireWarden tunnel API", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.origin_of = origin_of

    async def told(response: Response, origin: Origin) -> None:
        if tell_revision:
            revision = await run_in_threadpool(mappings.revision, origin.node)
            response.headers[REVISION_HEADER] = str(revision)

    @app.get(f"/{VERSION}/whoami")
    async def whoami(origin: From) -> dict[str, object]:
        return await run_in_threadpool(mappings.whoami, origin)

    @app.get(f"/{VERSION}/mappings")
    async def mine(origin: From) -> list[MappingOut]:
        return await run_in_threadpool(mappings.mine, origin)

    @app.post(f"/{VERSION}/mappings", status_code=status.HTTP_201_CREATED)
    async def register(origin: From, response: Response, body: MappingIn) -> MappingOut:
        made = await changes.run(mappings.register, origin, body)
        await told(response, origin)
        return made

    @app.post(f"/{VERSION}/names", status_code=status.HTTP_201_CREATED)
    async def register_name(origin: From, response: Response, body: NameIn) -> MappingOut:
        made = await changes.run(mappings.register_name, origin, body)
        await told(response, origin)  # a node's front serves it from that revision on
        return made

    @app.post(f"/{VERSION}/heartbeat")
    async def heartbeat(origin: From) -> Renewed:
        renewed, until = await changes.run(mappings.renew, origin)
        return Renewed(renewed=renewed, expires_at=until)

    @app.delete(f"/{VERSION}/mappings")
    async def remove_all(origin: From, response: Response) -> Removed:
        removed = Removed(removed=await changes.run(mappings.unregister, origin))
        await told(response, origin)
        return removed

    @app.delete(f"/{VERSION}/mappings/{{mapping_id}}")
    async def remove_one(origin: From, mapping_id: int) -> Response:
        await changes.run(mappings.unregister, origin, mapping_id)
        response = Response(status_code=status.HTTP_204_NO_CONTENT)
        await told(response, origin)
        return response

    @app.exception_handler(ServiceError)
    async def _error(_: Request, exc: ServiceError) -> JSONResponse:
        body = {"detail": exc.message, **({"field": exc.field} if exc.field else {})}
        return JSONResponse(body, status_code=exc.status)

    return app

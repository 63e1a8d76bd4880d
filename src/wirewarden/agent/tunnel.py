"""The tunnel API on a fleet node: the agent serves it on its node's gateway addresses
(those of the state it holds) and relays each request to the control plane, saying which
address pair the connection had (fleet/client.py TunnelRelay). The control plane decides
who the peer is, on this node only (web/tunnel.py); the agent adds what only this host
knows: which ports its own sockets hold, and when its kernel has a change.

A registration or removal is answered once this node's reconciler ran a pass of the
revision the control plane answered with (or `WAIT` seconds went by): the mapping works
when its client hears it does, as on the control plane's own node.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wirewarden.domain.addresses import host_of
from wirewarden.domain.exposure import host_port_taken
from wirewarden.domain.state import DesiredState
from wirewarden.fleet.client import RelayAnswer, Relayed, Unreachable

log = logging.getLogger(__name__)
# The tunnel API's bodies are a few fields; nothing larger is read or relayed.
MAX_BODY = 16 * 1024
# How long an answer waits for this node's kernel to hold the change it made.
WAIT = 5.0

Call = Callable[[Relayed], Awaitable[RelayAnswer]]
Reached = Callable[[int, float], Awaitable[bool]]
HostPorts = Callable[[str], frozenset[int]]


def gateways(desired: DesiredState | None) -> frozenset[str]:
    """The gateway addresses of the interfaces a node's state holds: where it listens."""
    if desired is None:
        return frozenset()
    return frozenset(
        host_of(address)
        for interface in desired.interfaces.values()
        for address in interface.addresses
    )


def _error(status: int, detail: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, **({"field": field} if field else {})}, status)


async def _body(request: Request) -> bytes | None:
    """The body, or None when it is larger than MAX_BODY (read no further)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return body


def _taken(body: bytes, host_ports: HostPorts) -> JSONResponse | None:
    """A registration of a port this host's own sockets hold: refused here (the control
    plane cannot see this host's sockets). Anything unreadable goes on, to be refused
    with the field named by the control plane."""
    try:
        data = json.loads(body)
        proto, port = data.get("proto", "tcp"), data["remote_port"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if proto in ("tcp", "udp") and isinstance(port, int) and port in host_ports(proto):
        return _error(409, host_port_taken(proto, port), "remote_port")
    return None


def relay_app(call: Call, host_ports: HostPorts, reached: Reached) -> Starlette:
    async def relay(request: Request) -> Response:
        server, client = request.scope.get("server"), request.client
        if not server or client is None:
            return _error(400, "no tunnel address")
        try:
            body = await _body(request)
        except ClientDisconnect:
            return Response(status_code=400)
        if body is None:
            return _error(413, f"the request body is larger than {MAX_BODY} bytes")
        path = request.url.path
        if request.method == "POST" and path == "/v1/mappings":
            refused = _taken(body, host_ports)
            if refused is not None:
                return refused
        asked = Relayed(request.method, path, body, str(server[0]), client.host)
        try:
            answer = await call(asked)
        except Unreachable as exc:
            log.warning("tunnel API: the control plane did not answer: %s", exc)
            return _error(503, "the control plane is unreachable; try again")
        revision = answer.revision if answer.status < 300 else None
        if revision is not None and not await reached(revision, WAIT):
            log.warning("tunnel API: revision %d not applied yet", revision)
        media = "application/json" if answer.body else None
        return Response(answer.body, status_code=answer.status, media_type=media)

    return Starlette(routes=[Route("/v1/{rest:path}", relay, methods=["GET", "POST", "DELETE"])])

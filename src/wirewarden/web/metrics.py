"""GET /metrics (Prometheus text format) behind loopback or a token, and request timing."""

from __future__ import annotations

import hmac
import ipaddress
import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wirewarden.metrics.prometheus import CONTENT_TYPE
from wirewarden.services import access
from wirewarden.web.deps import App, bearer

router = APIRouter(tags=["health"])


# Headers a proxy adds: their presence means the loopback peer is only the last hop, and
# the client behind it may be anyone.
FORWARDING_HEADERS = ("forwarded", "via", "x-real-ip", "x-client-ip", "true-client-ip")
FORWARDING_PREFIX = "x-forwarded-"


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _forwarded(request: Request) -> bool:
    return any(
        name in FORWARDING_HEADERS or name.startswith(FORWARDING_PREFIX) for name in request.headers
    )


def _open_without_token(app: App, request: Request) -> bool:
    """A local scraper needs no token only where nobody else can be local: serve listens on
    loopback alone and the request came straight, not through a proxy on this host."""
    settings = app.settings
    return (
        settings.metrics_access == "loopback"
        and settings.http_on_loopback
        and _loopback(request)
        and not _forwarded(request)
    )


def _token_ok(app: App, token: str) -> bool:
    expected = app.settings.metrics_token
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return True
    principal = app.tokens.authenticate(token)
    if principal is None or not {"read", "admin"} & set(principal.scopes):
        return False
    # The figures name every tenant's interfaces and peers: a tenant's user's token is
    # refused (403), as for any other fleet-wide read.
    access.require_admin(principal.actor(""))
    return True


@router.get("/metrics", response_class=Response)
def metrics(
    request: Request,
    app: App,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Response:
    """Prometheus metrics. Open to direct loopback clients when metrics_access is
    "loopback" and serve listens on loopback only; otherwise (through a proxy, or for
    anyone else) a bearer token: an admin's API token with the read scope or
    WIREWARDEN_METRICS_TOKEN."""
    allowed = _open_without_token(app, request)
    if not allowed and credentials is not None:
        allowed = _token_ok(app, credentials.credentials)
    if not allowed:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "metrics need a token (or a direct loopback client)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(app.telemetry.exposition(), media_type=CONTENT_TYPE)


class RequestTiming:
    """ASGI middleware observing each HTTP request's latency by method, route template and
    status (the template, not the path, keeps the label set small)."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app, self.histogram = app, histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        code = 500

        async def watch(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, watch)
        finally:
            route = _template(scope)
            elapsed = time.perf_counter() - started
            self.histogram.labels(scope["method"], route, str(code)).observe(elapsed)


def _template(scope: Scope) -> str:
    """The matched route's template (/api/v1/peers/{peer_id}), rebuilt from the path and its
    parameters; "unmatched" for paths no route took, so random URLs add no labels."""
    if scope.get("route") is None:
        return "unmatched"
    parts = str(scope.get("path", "")).split("/")
    for name, value in dict(scope.get("path_params") or {}).items():
        text = str(value)
        for i, part in enumerate(parts):
            if part == text:
                parts[i] = "{" + name + "}"
                break
    return "/".join(parts)

"""Forwarded headers, believed only from the reverse proxies the settings name.

A client talking to serve directly could otherwise claim any source address (the audit log
and the sign-in throttle key on it), https (Secure cookies, HSTS) or host. From a trusted
peer, uvicorn's ProxyHeadersMiddleware takes the client address from X-Forwarded-For
(walking back over trusted hops) and the scheme from X-Forwarded-Proto; X-Forwarded-Host,
which uvicorn leaves alone, becomes the Host header here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from wirewarden.domain import addresses

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def install(app: FastAPI, trusted: Sequence[str]) -> None:
    """Honour forwarded headers from `trusted` (none when empty). Call it after every other
    add_middleware: the last added runs first, and the rest must see the real client."""
    if not trusted:
        return
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(trusted))
    app.add_middleware(ForwardedHost, trusted=trusted)


class ForwardedHost:
    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        self.app = app
        self.networks: list[Network] = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def trusts(self, host: str | None) -> bool:
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if self.trusts(client[0] if client else None):
                scope = _with_forwarded_host(scope)
        await self.app(scope, receive, send)


def _with_forwarded_host(scope: Scope) -> Scope:
    headers: list[tuple[bytes, bytes]] = list(scope["headers"])
    forwarded = [v for k, v in headers if k == b"x-forwarded-host"]
    if not forwarded:
        return scope
    # The proxy appends: the last value is the one it saw from the client.
    value = forwarded[-1].decode("latin-1").split(",")[-1].strip()
    try:
        addresses.endpoint(value)
    except addresses.AddressError:
        return scope  # not a host[:port]: keep the proxy's own Host
    kept = [(k, v) for k, v in headers if k != b"host"]
    return {**scope, "headers": [*kept, (b"host", value.encode("latin-1"))]}

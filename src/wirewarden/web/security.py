"""Security headers on every HTTP response (pure ASGI, so streaming and errors get them too)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No inline script or style anywhere: pages load their JS and CSS from /static.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


# A year, the usual value; no includeSubDomains: other services of the domain are not ours.
HSTS = "max-age=31536000"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                # Only over HTTPS (the scheme a trusted proxy reported counts): browsers ignore
                # it on plain HTTP, and HTTP is what a fresh install on loopback speaks.
                if self.hsts and scope.get("scheme") == "https":
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if not scope.get("path", "").startswith("/static/"):
                    # Pages and answers hold private data and secrets (configs, tokens, codes):
                    # nothing for caches, nor for the back button after a logout.
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)

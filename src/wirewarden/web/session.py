"""The session cookie: set after a sign-in, cleared at logout (API and dashboard alike)."""

from __future__ import annotations

from fastapi import Request, Response

from wirewarden.services.auth import LoginResult
from wirewarden.web.deps import SESSION_COOKIE, app_of


def is_https(request: Request) -> bool:
    """Served over TLS, or behind a proxy that says so and that the settings trust."""
    if request.url.scheme == "https":
        return True
    settings = app_of(request).settings
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return settings.trust_forwarded_proto and forwarded == "https"


def set_session_cookie(request: Request, response: Response, result: LoginResult) -> None:
    # No Max-Age: the cookie ends with the browser; the server enforces idle/absolute expiry.
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )

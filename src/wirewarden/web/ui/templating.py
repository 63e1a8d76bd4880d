"""Jinja2 set-up for the dashboard and the helpers every page uses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from wirewarden.web.ui.units import human_bytes, speed
from wirewarden.web.ui.viewer import Viewer

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# Private pages must not be kept by the browser: after sign-out, Back shows nothing.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FLASH_COOKIE = "ww_flash"
FLASH_MAX = 300


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 5:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def timestamp(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def epoch(value: datetime | None) -> int:
    return int(value.timestamp()) if value else 0


templates = Jinja2Templates(directory=str(TEMPLATES))


def plain(value: object) -> str:
    """An audit detail value in words a reader expects, not Python's repr of it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple | set):
        return ", ".join(plain(v) for v in value) or "none"
    return str(value)


templates.env.filters.update(
    bytes=human_bytes, speed=speed, ago=ago, ts=timestamp, epoch=epoch, plain=plain
)


def page(
    request: Request,
    name: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a template as a private (never cached) page."""
    # Half-signed-in pages (the 2FA step) pass their session's token without a viewer.
    context = {"viewer": viewer, "csrf": viewer.csrf if viewer else "", **context}
    flashed = _take_flash(request, context)
    response = templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=NO_STORE
    )
    if flashed:
        response.delete_cookie(FLASH_COOKIE, httponly=True, samesite="strict")
    return response


def redirect(url: str, flash: str | None = None) -> RedirectResponse:
    """A 303 to `url` (the browser follows a POST with a GET, so reloading never
    re-submits a form), carrying a success message the next page shows once."""
    response = RedirectResponse(url, status_code=303, headers=NO_STORE)
    if flash:
        # The message is no secret (it names what the user just did), so no Secure flag is
        # needed; Strict keeps another site's redirect from planting one.
        response.set_cookie(
            FLASH_COOKIE, quote(flash[:FLASH_MAX]), max_age=60, httponly=True, samesite="strict"
        )
    return response


def _take_flash(request: Request, context: dict[str, Any]) -> bool:
    """Show a pending success message on this page; whether there was one to clear."""
    if FLASH_COOKIE not in request.cookies or request.headers.get("hx-request"):
        return False  # an htmx fragment has no place for it: the next full page shows it
    context.setdefault("notice", None)
    context["notice"] = context["notice"] or unquote(request.cookies[FLASH_COOKIE])[:FLASH_MAX]
    return True

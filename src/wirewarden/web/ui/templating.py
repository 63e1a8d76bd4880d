"""Jinja2 set-up for the dashboard and the helpers every page uses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from wirewarden.web.ui.units import human_bytes, speed
from wirewarden.web.ui.viewer import Viewer

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# Private pages must not be kept by the browser: after sign-out, Back shows nothing.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


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
    response = templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=NO_STORE
    )
    return response


def redirect(url: str) -> RedirectResponse:
    # 303: the browser follows a POST with a GET, so reloading never re-submits a form.
    return RedirectResponse(url, status_code=303, headers=NO_STORE)

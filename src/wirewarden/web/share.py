"""/s/{token}: the public side of one-time share links.

GET shows a page with a button and does not use the link up (chat apps and mail scanners
fetch links to preview them); POST reveals the config and QR and uses it up.
`POST /s/{token}?format=conf` answers the bare config for scripts.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from wirewarden.services.errors import NotFound
from wirewarden.services.shares import GONE
from wirewarden.web.deps import App, source_of

router = APIRouter(prefix="/s", include_in_schema=False)
_pages = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates" / "share"),
    autoescape=select_autoescape(["html"]),
)


def _page(name: str, status_code: int = 200, **values: object) -> HTMLResponse:
    html = _pages.get_template(name).render(**values)
    return HTMLResponse(html, status_code=status_code, headers={"X-Robots-Tag": "noindex"})


@router.get("/{token}")
def share_landing(app: App, token: str) -> HTMLResponse:
    if not app.shares.is_open(token):
        return _page("gone.html", 404, message=GONE)
    return _page("open.html", token=token)


@router.post("/{token}", response_model=None)
def share_reveal(
    app: App,
    request: Request,
    token: str,
    fmt: Annotated[str | None, Query(alias="format", pattern="^conf$")] = None,
) -> Response:
    try:
        shared = app.shares.redeem(token, source_of(request))
    except NotFound:
        if fmt == "conf":
            return PlainTextResponse(GONE + "\n", status_code=404)
        return _page("gone.html", 404, message=GONE)
    if fmt == "conf":
        disposition = f'attachment; filename="{shared.filename}"'
        return PlainTextResponse(shared.config, headers={"Content-Disposition": disposition})
    data = base64.b64encode(shared.config.encode()).decode()
    return _page(
        "config.html",
        peer=shared.peer,
        filename=shared.filename,
        config=shared.config,
        qr_svg=shared.qr_svg,
        download=f"data:text/plain;base64,{data}",
    )

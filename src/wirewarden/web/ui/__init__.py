"""The server-rendered dashboard: pages, forms, the live status socket, static files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import Response

from wirewarden.services.errors import ServiceError
from wirewarden.services.peer_table import PeerTable
from wirewarden.web.ui import (
    account,
    assets,
    auth,
    dns,
    iface_settings,
    interfaces,
    live,
    nodes,
    peers,
    people,
    plans,
    policy,
    setup,
    signin,
    tenants,
    traffic,
)
from wirewarden.web.ui.forms import CsrfRejected
from wirewarden.web.ui.templating import NO_STORE, redirect, templates
from wirewarden.web.ui.viewer import Forbidden, SignInRequired

JsonHandler = Callable[[Request, ServiceError], Awaitable[Response]]


def install(app: FastAPI, json_errors: JsonHandler) -> None:
    settings = app.state.container.settings
    assets.install(app, assets.find_vendor(settings.assets_dir))
    for module in (
        signin,
        setup,
        interfaces,
        iface_settings,
        peers,
        traffic,
        dns,
        plans,
        tenants,
        nodes,
        policy,
        account,
        people,
    ):
        app.include_router(module.router)
    container = app.state.container
    app.state.status_hub = live.StatusHub(container)
    app.state.peer_table = PeerTable(container.deps, container.peers)
    app.include_router(live.make_router(lambda conn: auth.resolve_viewer(conn), auth.own_peer_ids))

    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return redirect(f"/login?next={quote(exc.next_url, safe='/')}")

    async def forbidden(request: Request, _: Exception) -> Response:
        return _error(request, 403, "You may not see this page.")

    async def csrf(request: Request, _: Exception) -> Response:
        return _error(request, 403, "The form expired or came from elsewhere; reload and retry.")

    async def service_error(request: Request, exc: ServiceError) -> Response:
        if request.url.path.startswith("/api/"):
            return await json_errors(request, exc)
        return _error(request, exc.status, exc.message)

    app.add_exception_handler(SignInRequired, sign_in)  # type: ignore[arg-type]
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(CsrfRejected, csrf)
    app.add_exception_handler(ServiceError, service_error)  # type: ignore[arg-type]


def _error(request: Request, status: int, message: str) -> Response:
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "message": message, "viewer": None, "csrf": ""},
        status_code=status,
        headers=NO_STORE,
    )

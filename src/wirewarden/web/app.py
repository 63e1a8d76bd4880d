"""The ASGI application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from wirewarden import __version__
from wirewarden.bootstrap import Container
from wirewarden.services.errors import Invalid, ServiceError, Unauthorized
from wirewarden.web import agent, apidocs, deps, failures, metrics, proxy, share, ui
from wirewarden.web.agent import AgentHub
from wirewarden.web.api import (
    audit,
    auth,
    dns,
    interfaces,
    mappings,
    nodes,
    peers,
    plans,
    policy,
    shares,
    tenants,
    tokens,
    traffic,
    users,
)
from wirewarden.web.bodygate import BodyGate
from wirewarden.web.changes import ChangeThread
from wirewarden.web.deps import Reader
from wirewarden.web.security import SecurityHeaders
from wirewarden.web.tunnel import TunnelListener, tunnel_app

log = logging.getLogger(__name__)
REAP_SECONDS = 10.0


def create_app(container: Container, run_loop: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        agents.start()
        resolver = container.dns_runtime if run_loop else None
        if run_loop:
            # Data caps count on from the traffic history where the kernel lost the quotas.
            container.usage.restore_from_history()
            container.loop.start()  # its first pass adopts what is running and heals drift
            container.collector.start()
        if resolver is not None:
            resolver.start()
        tunnel = reaper = None
        if run_loop:
            mappings = container.mappings
            api = tunnel_app(mappings, changes)
            port = container.settings.tunnel_api_port
            tunnel = TunnelListener(api, mappings.gateways, port)
            tunnel.start()
            reaper = asyncio.get_running_loop().create_task(_reap(mappings.reap, changes))
        yield
        if reaper is not None and tunnel is not None:
            reaper.cancel()
            await tunnel.stop()
        await agents.stop()
        changes.close()
        if resolver is not None:
            resolver.stop()
        if run_loop:
            container.collector.stop()
            container.loop.stop()

    # The schema and the docs are served below, behind authentication (DESIGN.md §8).
    app = FastAPI(
        title="WireWarden",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.container = container
    app.state.changes = changes = ChangeThread()
    app.state.agents = agents = AgentHub(container)
    routers = (
        interfaces,
        peers,
        policy,
        plans,
        tenants,
        dns,
        traffic,
        shares,
        auth,
        users,
        tokens,
        audit,
        mappings,
        nodes,
    )
    for module in routers:
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(agent.router, prefix="/api/v1")
    app.include_router(share.router)
    app.include_router(metrics.router)
    # Innermost: a refused body is answered (and timed, and given the headers) like any other.
    app.add_middleware(
        BodyGate,
        max_bytes=container.settings.max_body_bytes,
        identify=deps.identify,
        identify_node=agent.identify_node,
    )
    app.add_middleware(metrics.RequestTiming, histogram=container.telemetry.http_duration)
    app.add_middleware(SecurityHeaders, hsts=container.reach.hsts)
    app.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    failures.install(app)  # busy database: 503 with Retry-After; full disk: 507
    ui.install(app, _service_error)  # the dashboard; its error pages are HTML outside /api

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, object]:
        return {"status": "ok", "version": __version__}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Reader) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(_: Reader) -> HTMLResponse:
        return HTMLResponse(apidocs.render(app.openapi()))

    proxy.install(app, container.reach.trusted_proxies)  # last: it must run first
    return app


async def _reap(reap: Callable[[], int], changes: ChangeThread) -> None:
    """Expired mappings leave the database (and so the kernel) every REAP_SECONDS."""
    while True:
        await asyncio.sleep(REAP_SECONDS)
        try:
            await changes.run(reap)
        except Exception:  # a busy database: the next round tries again
            log.exception("reaping expired mappings")


async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
    if isinstance(exc, Invalid):
        # The same shape as FastAPI's own validation errors, so clients read one format.
        loc = ["body", exc.field] if exc.field else ["body"]
        detail: object = [{"loc": loc, "msg": exc.message, "type": "value_error"}]
    else:
        detail = exc.message
    body = {"detail": detail, **({"field": exc.field} if exc.field else {})}
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=exc.status, headers=headers)

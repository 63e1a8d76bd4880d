"""The ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from wirewarden import __version__
from wirewarden.bootstrap import Container
from wirewarden.services.errors import Invalid, ServiceError
from wirewarden.web import metrics, ui
from wirewarden.web.api import dns, interfaces, peers, policy, traffic


def create_app(container: Container, run_loop: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        resolver = container.dns_runtime if run_loop else None
        if run_loop:
            container.loop.start()  # its first pass adopts what is running and heals drift
            container.collector.start()
        if resolver is not None:
            resolver.start()
        yield
        if resolver is not None:
            resolver.stop()
        if run_loop:
            container.collector.stop()
            container.loop.stop()

    app = FastAPI(title="WireWarden", version=__version__, lifespan=lifespan)
    app.state.container = container
    app.include_router(interfaces.router, prefix="/api/v1")
    app.include_router(peers.router, prefix="/api/v1")
    app.include_router(policy.router, prefix="/api/v1")
    app.include_router(dns.router, prefix="/api/v1")
    app.include_router(traffic.router, prefix="/api/v1")
    app.include_router(metrics.router)
    app.add_middleware(metrics.RequestTiming, histogram=container.telemetry.http_duration)
    app.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    ui.install(app, _service_error)  # the dashboard; its error pages are HTML outside /api

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, object]:
        return {"status": "ok", "version": __version__}

    return app


async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
    if isinstance(exc, Invalid):
        # The same shape as FastAPI's own validation errors, so clients read one format.
        loc = ["body", exc.field] if exc.field else ["body"]
        detail: object = [{"loc": loc, "msg": exc.message, "type": "value_error"}]
    else:
        detail = exc.message
    body = {"detail": detail, **({"field": exc.field} if exc.field else {})}
    return JSONResponse(body, status_code=exc.status)

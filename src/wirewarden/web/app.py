"""The ASGI application."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from wirewarden import __version__
from wirewarden.bootstrap import Container, name_front
from wirewarden.relay.listener import TunnelListener
from wirewarden.services.errors import Invalid, ServiceError, Unauthorized
from wirewarden.services.nodes import Heartbeat
from wirewarden.store.fleet import Leadership
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
from wirewarden.web.tunnel import relayed_origin, socket_origin, tunnel_app

log = logging.getLogger(__name__)
CHORE_SECONDS = 5.0


def create_app(container: Container, run_loop: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        agents.start()
        resolver = container.dns_runtime if run_loop else None
        if run_loop:
            # Data caps count on from the traffic history where the kernel lost the quotas.
            container.usage.restore_from_history()
            if container.node.classifier is not None:
                container.node.classifier.armed = True
            container.loop.start()  # its first pass adopts what is running and heals drift
            container.collector.start()
        if resolver is not None:
            resolver.start()
        tunnel = None
        if run_loop:
            mappings = container.mappings
            api = tunnel_app(mappings, changes, socket_origin(mappings.deps.node))
            port = container.settings.tunnel_api_port
            tunnel = TunnelListener(api, mappings.gateways, port)
            tunnel.start()
        front = name_front(container) if run_loop else None
        if front is not None:
            await front.start()
        chores = Chores(container, changes, run_loop)
        reaper = asyncio.get_running_loop().create_task(chores.run())
        yield
        reaper.cancel()
        await run_in_threadpool(chores.leadership.release)
        if tunnel is not None:
            await tunnel.stop()
        if front is not None:
            await front.stop()
        await agents.stop()
        changes.close()
        if resolver is not None:
            resolver.stop()
        if run_loop:
            container.collector.stop()
            container.loop.stop()
            classifier = container.node.classifier
            if classifier is not None:
                # The queue rule goes with its reader (its bypass would let all through
                # anyway, but a stopped serve leaves no rule of its own behind).
                await run_in_threadpool(classifier.close)

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
    # The tunnel API of a fleet node's peers, relayed by its agent (web/tunnel.py).
    relayed = tunnel_app(
        container.mappings, changes, relayed_origin(agent.identify_node), tell_revision=True
    )
    relayed.state.container = container  # what identify_node reads the credential with
    app.mount(agent.TUNNEL_PREFIX, relayed)
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


class Chores:
    """Work done every CHORE_SECONDS: on one replica at a time (the holder of the chores'
    advisory lock), expired mappings leave the database (and so the kernel) and nodes
    unheard for 30 s are marked offline; on each replica that runs its node, that node's
    own heartbeat (it has no agent)."""

    def __init__(self, container: Container, changes: ChangeThread, run_loop: bool) -> None:
        self.container, self.changes, self.run_loop = container, changes, run_loop
        self.leadership = Leadership(container.engine)
        self.started = time.monotonic()
        self._cpu = (time.monotonic(), time.process_time())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHORE_SECONDS)
            await self.once()

    async def once(self) -> None:
        try:
            if self.run_loop:
                await run_in_threadpool(self._beat)
            if not await run_in_threadpool(self.leadership.held):
                return
            # Every node's expired mappings, whether this replica runs a node or not.
            await self.changes.run(self.container.mappings.reap)
            await run_in_threadpool(self.container.nodes.mark_offline)
        except Exception:  # a busy database: the next round tries again
            log.exception("periodic chores")

    def _cpu_percent(self) -> float:
        """This process's CPU use since the last beat (serve is the node's runtime)."""
        wall, cpu = time.monotonic(), time.process_time()
        then, used = self._cpu
        self._cpu = (wall, cpu)
        return round(100 * (cpu - used) / max(wall - then, 1e-6), 1)

    def _beat(self) -> None:
        container = self.container
        seen = container.collector.snapshot.interfaces.values()
        desired = container.reconciler.last_desired
        beat = Heartbeat(
            peers=sum(i.peers for i in seen),
            online_peers=sum(i.online for i in seen),
            rx_bps=int(sum(i.rx_rate for i in seen) * 8),
            tx_bps=int(sum(i.tx_rate for i in seen) * 8),
            cpu_percent=self._cpu_percent(),
            version=__version__,
            uptime_s=int(time.monotonic() - self.started),
        )
        container.nodes.local_heartbeat(beat, desired.revision if desired else None)


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

"""/api/v1/dns: policies, blocklists, the query log and stats."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel

from wirewarden.services.dns_schemas import (
    BlocklistOut,
    DnsPolicyIn,
    DnsPolicyOut,
    DnsQueryOut,
    DnsStats,
    TenantDnsIn,
)
from wirewarden.services.schemas import Page
from wirewarden.web.deps import App, Limit, Offset, Reader, Writer

router = APIRouter(prefix="/dns", tags=["dns"])


@router.get("/policies")
def list_policies(app: App, actor: Reader) -> list[DnsPolicyOut]:
    return app.dns.list_policies(actor)


@router.get("/policies/{name}")
def get_policy(app: App, actor: Reader, name: str) -> DnsPolicyOut:
    return app.dns.get_policy(name, actor)


@router.put("/policies/{name}")
def put_policy(
    app: App, actor: Writer, name: str, body: DnsPolicyIn, response: Response
) -> DnsPolicyOut:
    out, created = app.dns.put_policy(name, body, actor)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return out


@router.delete("/policies/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_policy(app: App, actor: Writer, name: str) -> Response:
    app.dns.delete_policy(name, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/tenants/{tenant}", status_code=status.HTTP_204_NO_CONTENT)
def set_tenant_policy(app: App, actor: Writer, tenant: str, body: TenantDnsIn) -> Response:
    app.dns.set_tenant_policy(tenant, body.policy, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/blocklists")
def list_blocklists(app: App, actor: Reader) -> list[BlocklistOut]:
    return app.dns.list_status(actor)


class RefreshIn(BaseModel):
    sources: list[str] | None = None


@router.post("/blocklists/refresh")
def refresh_blocklists(
    app: App, actor: Writer, body: RefreshIn | None = None
) -> list[BlocklistOut]:
    return app.dns.refresh(body.sources if body else None, actor=actor)


@router.get("/queries")
def queries(
    app: App,
    actor: Reader,
    peer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    policy: str | None = None,
    status: str | None = None,
    name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[DnsQueryOut]:
    return app.dns.queries(
        peer_id=peer_id,
        policy=policy,
        status=status,
        name=name,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
        actor=actor,
    )


@router.get("/stats")
def stats(
    app: App,
    actor: Reader,
    since: datetime | None = None,
    peer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    policy: str | None = None,
) -> DnsStats:
    return app.dns.stats(since, peer_id, policy, actor)


@router.get("/status")
def resolver_status(app: App, _: Reader) -> dict[str, object]:
    """The running resolver: where it listens, upstream health, cache figures."""
    runtime = app.dns_runtime
    return runtime.status() if runtime is not None else {"running": False}

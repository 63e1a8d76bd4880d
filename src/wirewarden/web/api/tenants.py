"""/api/v1/tenants: each with its own interface, plan and DNS policy."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from wirewarden.services.placement import PlacedPeerCreate
from wirewarden.services.schemas import PeerOut
from wirewarden.services.tenant_schemas import TenantCreate, TenantOut, TenantUpdate
from wirewarden.web.deps import App, Reader, Writer

router = APIRouter(tags=["tenants"])


@router.get("/tenants")
def list_tenants(app: App, actor: Reader) -> list[TenantOut]:
    return app.tenants.list(actor)


@router.post("/tenants", status_code=status.HTTP_201_CREATED)
def create_tenant(app: App, actor: Writer, body: TenantCreate) -> TenantOut:
    return app.tenants.create(body, actor)


@router.get("/tenants/{name}")
def get_tenant(app: App, actor: Reader, name: str) -> TenantOut:
    return app.tenants.get(name, actor)


@router.patch("/tenants/{name}")
def update_tenant(app: App, actor: Writer, name: str, body: TenantUpdate) -> TenantOut:
    return app.tenants.update(name, body, actor)


@router.delete("/tenants/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tenant(app: App, actor: Writer, name: str) -> Response:
    app.tenants.delete(name, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/tenants/{name}/peers", status_code=status.HTTP_201_CREATED)
def place_peer(app: App, actor: Writer, name: str, body: PlacedPeerCreate) -> PeerOut:
    """A new peer on the tenant's interface of the least-loaded online, non-draining node
    (of `region`, if given); 409 when no node can take it."""
    return app.placement.place(name, body, actor)

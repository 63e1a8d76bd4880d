"""/api/v1/interfaces"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import PlainTextResponse

from wirewarden.services.schemas import (
    InterfaceCreate,
    InterfaceOut,
    InterfaceUpdate,
    KeyPage,
    Page,
    PeerCreate,
    PeerOut,
)
from wirewarden.web.api.serialized import model_response
from wirewarden.web.deps import App, Changes, Limit, Offset, Reader, Writer

router = APIRouter(prefix="/interfaces", tags=["interfaces"])
NameFilter = Annotated[str | None, Query(max_length=64, description="Substring of the name")]
After = Annotated[
    str | None,
    Query(
        max_length=400,
        description="A page's `next` cursor: the page after it (offset then counts from there)",
    ),
]


@router.get("")
def list_interfaces(
    app: App, actor: Reader, name: NameFilter = None, limit: Limit = 100, offset: Offset = 0
) -> Page[InterfaceOut]:
    return app.interfaces.list(name, limit, offset, actor)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_interface(app: App, actor: Writer, body: InterfaceCreate) -> InterfaceOut:
    return app.interfaces.create(body, actor)


@router.get("/{name}")
def get_interface(app: App, actor: Reader, name: str) -> InterfaceOut:
    return app.interfaces.get(name, actor)


@router.patch("/{name}")
def update_interface(app: App, actor: Writer, name: str, body: InterfaceUpdate) -> InterfaceOut:
    return app.interfaces.update(name, body, actor)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_interface(app: App, actor: Writer, name: str) -> Response:
    app.interfaces.delete(name, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/config", response_class=PlainTextResponse)
def export_interface(app: App, actor: Writer, name: str) -> PlainTextResponse:
    # Holds the server's private key, hence the write scope.
    return PlainTextResponse(app.interfaces.export(name, actor))


@router.get("/{name}/peers")
def list_peers(
    app: App,
    actor: Reader,
    name: str,
    q: NameFilter = None,
    limit: Limit = 100,
    offset: Offset = 0,
    after: After = None,
) -> KeyPage[PeerOut]:
    return app.peers.list(name, q, limit, offset, actor, after)


@router.post("/{name}/peers", status_code=status.HTTP_201_CREATED, response_model=PeerOut)
async def create_peer(
    app: App, changes: Changes, actor: Writer, name: str, body: PeerCreate
) -> Response:
    created = await changes.run(app.peers.create, name, body, actor)
    return model_response(created, status.HTTP_201_CREATED)

"""/api/v1/nodes: the fleet's nodes, their place, load and sync (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from wirewarden.services.node_schemas import (
    JoinToken,
    JoinTokenCreate,
    NodeCreate,
    NodeCreated,
    NodeOut,
    NodeUpdate,
)
from wirewarden.web.deps import App, Reader, Writer

router = APIRouter(tags=["nodes"])


@router.get("/nodes")
def list_nodes(app: App, actor: Reader) -> list[NodeOut]:
    return app.nodes.list(actor)


@router.post("/nodes", status_code=status.HTTP_201_CREATED)
def create_node(app: App, actor: Writer, body: NodeCreate) -> NodeCreated:
    """Adds a node; the answer's `join_token` is shown this once."""
    return app.nodes.add(body, actor)


@router.get("/nodes/{name}")
def get_node(app: App, actor: Reader, name: str) -> NodeOut:
    return app.nodes.get(name, actor)


@router.patch("/nodes/{name}")
def update_node(app: App, actor: Writer, name: str, body: NodeUpdate) -> NodeOut:
    return app.nodes.update(name, body, actor)


@router.delete("/nodes/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_node(app: App, actor: Writer, name: str) -> Response:
    app.nodes.remove(name, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/nodes/{name}/join-token", status_code=status.HTTP_201_CREATED)
def new_join_token(
    app: App,
    actor: Writer,
    name: str,
    body: Annotated[JoinTokenCreate | None, Body()] = None,
) -> JoinToken:
    return app.nodes.join_token(name, actor, (body or JoinTokenCreate()).hours)

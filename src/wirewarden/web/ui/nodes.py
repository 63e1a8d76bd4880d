"""Dashboard page of the fleet's nodes (admins only: the service refuses anyone else)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from wirewarden.bootstrap import Container
from wirewarden.services.errors import ServiceError
from wirewarden.services.node_schemas import NodeCreate, NodeCreated, NodeOut, NodeUpdate
from wirewarden.web.ui import forms
from wirewarden.web.ui.auth import Admin, App
from wirewarden.web.ui.templating import page, redirect
from wirewarden.web.ui.viewer import Viewer

router = APIRouter(include_in_schema=False)
FIELDS = ("name", "region", "capacity", "country", "city", "lat", "lon", "public_host")


@router.get("/nodes", response_class=HTMLResponse)
def nodes_page(request: Request, app: App, viewer: Admin) -> Response:
    return _page(request, app, viewer, {}, {})


@router.post("/nodes/new", response_class=HTMLResponse)
def add_node(request: Request, app: App, viewer: Admin, form: forms.Posted) -> Response:
    data = forms.values(form, FIELDS)
    errors: forms.Errors = {}
    given = {k: v for k, v in data.items() if v != ""}
    body = forms.build(lambda: NodeCreate.model_validate(given), errors)
    if body is None:
        return _page(request, app, viewer, data, errors, status=422)
    try:
        created = app.nodes.add(body, viewer.actor)
    except ServiceError as exc:
        status = forms.service_error(exc, errors)
        return _page(request, app, viewer, data, errors, status=status)
    # The join token is in this answer alone: it is stored hashed.
    return _page(request, app, viewer, {}, {}, created=created)


@router.post("/nodes/{name}/drain")
def set_drain(request: Request, app: App, viewer: Admin, name: str, form: forms.Posted) -> Response:
    drain = form.get("drain") == "on"
    app.nodes.update(name, NodeUpdate(drain=drain), viewer.actor)
    return redirect("/nodes")


@router.post("/nodes/{name}/token", response_class=HTMLResponse)
def new_token(request: Request, app: App, viewer: Admin, name: str, _: forms.Posted) -> Response:
    issued = app.nodes.join_token(name, viewer.actor)
    return _page(request, app, viewer, {}, {}, token=(issued.node, issued.join_token))


@router.post("/nodes/{name}/delete")
def delete_node(request: Request, app: App, viewer: Admin, name: str, _: forms.Posted) -> Response:
    app.nodes.remove(name, viewer.actor)
    return redirect("/nodes")


def _page(
    request: Request,
    app: Container,
    viewer: Viewer,
    data: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
    created: NodeCreated | None = None,
    token: tuple[str, str] | None = None,
) -> Response:
    nodes = app.nodes.list(viewer.actor)
    regions = sorted({n.region or "—" for n in nodes})
    if created is not None:
        token = (created.name, created.join_token)
    return page(
        request,
        "nodes.html",
        viewer,
        nav="nodes",
        nodes=nodes,
        regions=regions,
        markers=markers(nodes),
        form=data,
        errors=errors,
        token=token,
        fleet=app.nodes.fleet_possible(),
        server=app.reach.public_url,
        status_code=status,
    )


def markers(nodes: list[NodeOut]) -> list[dict[str, object]]:
    """The map's markers: each node that has a position, with what its tooltip says. The
    page carries them as JSON (the CSP allows no inline script) inside the part it
    refreshes, so a node's status colour follows its heartbeats."""
    return [
        {
            "name": n.name,
            "coords": [n.lat, n.lon],
            "status": n.status,
            "place": ", ".join(p for p in (n.city, n.country) if p),
            "load": round(n.load * 100, 1),
            "peers": n.peers,
        }
        for n in nodes
        if n.lat is not None and n.lon is not None
    ]

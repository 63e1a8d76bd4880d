"""Dashboard pages: the overview, an interface with its peer table, new interface/peer."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from wirewarden.domain.classify.verdict import APPS
from wirewarden.domain.meshmap import PeerDot, layout
from wirewarden.services.errors import ServiceError
from wirewarden.services.peer_table import PeerQuery, PeerTable
from wirewarden.services.schemas import InterfaceCreate, InterfaceOut, PeerCreate
from wirewarden.web.deps import MAX_OFFSET
from wirewarden.web.ui import forms
from wirewarden.web.ui.auth import App, Manager, Signed
from wirewarden.web.ui.templating import page, redirect
from wirewarden.web.ui.viewer import Viewer

router = APIRouter(include_in_schema=False)
IFACE_FIELDS = ("name", "address", "listen_port", "endpoint", "dns", "mtu")
PEER_FIELDS = (
    "display_name",
    "name",
    "address",
    "allowed_ips",
    "routed_ips",
    "persistent_keepalive",
    "expires_at",
    "public_key",
    "owner",
)
# What a member may set on their own device (the service refuses the rest with 403).
MEMBER_FIELDS = (
    "display_name",
    "name",
    "address",
    "allowed_ips",
    "persistent_keepalive",
    "public_key",
)
PAGE_SIZES = (25, 50, 100, 200)


def table(request: Request) -> PeerTable:
    """One per app: it caches what live sorts read (see PeerTable._by_name)."""
    found: PeerTable = request.app.state.peer_table
    return found


@dataclass(frozen=True)
class InterfaceRow:
    iface: InterfaceOut
    peers: int
    online: int
    # Neither the interface nor the server names a host clients dial: configs would fail.
    no_endpoint: bool = False


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, app: App, viewer: Signed) -> Response:
    rows, rx, tx = [], 0, 0
    for iface in app.interfaces.list(limit=1000, actor=viewer.actor).items:
        summary = table(request).summary(iface.name, viewer.actor)
        rx, tx = rx + summary.rx_bytes, tx + summary.tx_bytes
        lost = not iface.endpoint and not app.settings.public_host
        rows.append(InterfaceRow(iface, summary.peers, summary.online, lost))
    totals = {
        "interfaces": len(rows),
        "peers": sum(r.peers for r in rows),
        "online": sum(r.online for r in rows),
        "rx": rx,
        "tx": tx,
    }
    return page(
        request,
        "overview.html",
        viewer,
        nav="overview",
        interfaces=rows,
        totals=totals,
        metrics_period=app.settings.metrics_period,
    )


def table_query(request: Request) -> PeerQuery:
    params = request.query_params
    size = _int(params.get("size"), 50)
    size = size if size in PAGE_SIZES else 50
    # Bounded like the API's offset (web/deps.py): a huge page is past the end, not a 500.
    number = min(max(1, _int(params.get("page"), 1)), MAX_OFFSET // size)
    return PeerQuery(
        q=params.get("q", ""),
        sort=params.get("sort", "name"),
        desc=params.get("dir") == "desc",
        limit=size,
        offset=(number - 1) * size,
        after=params.get("after", ""),
    ).normalised()


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


@router.get("/interfaces/new", response_class=HTMLResponse)
def new_interface(request: Request, viewer: Manager) -> Response:
    return _interface_form(request, viewer, {"mtu": "1420"}, {})


@router.post("/interfaces/new", response_class=HTMLResponse)
def create_interface(request: Request, app: App, viewer: Manager, form: forms.Posted) -> Response:
    data = forms.values(form, IFACE_FIELDS)
    errors: forms.Errors = {}
    body = forms.build(
        lambda: InterfaceCreate.model_validate(
            forms.optional(data, "address", "listen_port", "endpoint", "mtu")
        ),
        errors,
    )
    if body is None:
        return _interface_form(request, viewer, data, errors, 422)
    try:
        created = app.interfaces.create(body, viewer.actor)
    except ServiceError as exc:
        return _interface_form(request, viewer, data, errors, forms.service_error(exc, errors))
    return redirect(f"/interfaces/{created.name}", f"Interface {created.name} created.")


def _interface_form(
    request: Request, viewer: Viewer, data: dict[str, str], errors: forms.Errors, status: int = 200
) -> Response:
    return page(request, "interface_form.html", viewer, status, form=data, errors=errors)


@router.get("/interfaces/{name}", response_class=HTMLResponse)
def interface_page(request: Request, app: App, viewer: Signed, name: str) -> Response:
    iface = app.interfaces.get(name, viewer.actor)
    query = table_query(request)
    result = table(request).page(name, query, viewer.actor)
    # htmx asks for the table alone when searching, sorting or paging.
    template = "_peer_table.html" if request.headers.get("hx-request") else "interface.html"
    base = f"/interfaces/{name}"
    # The bulk policy form is an admin's: a member's page shows no choices it may not make.
    profile_names = [p.name for p in app.profiles.list()] if viewer.is_admin else []
    dns_names = [p.name for p in app.dns.list_policies(viewer.actor)] if viewer.is_admin else []
    return page(
        request,
        template,
        viewer,
        iface=iface,
        page=result,
        query=query,
        base=base,
        profile_names=profile_names,
        dns_policy_names=dns_names,
        apps=APPS,
        mesh=layout([PeerDot(p.id, p.display_name, p.mesh, p.online) for p in result.items]),
    )


@router.get("/interfaces/{name}/peers/new", response_class=HTMLResponse)
def new_peer(request: Request, app: App, viewer: Signed, name: str) -> Response:
    app.interfaces.get(name, viewer.actor)
    defaults = {"allowed_ips": "0.0.0.0/0, ::/0", "persistent_keepalive": "25"}
    return _peer_form(request, viewer, name, defaults, {})


@router.post("/interfaces/{name}/peers/new", response_class=HTMLResponse)
def create_peer(
    request: Request, app: App, viewer: Signed, name: str, form: forms.Posted
) -> Response:
    fields = PEER_FIELDS if viewer.is_admin else MEMBER_FIELDS
    data = forms.values(form, fields)
    errors: forms.Errors = {}
    body = forms.build(
        lambda: PeerCreate.model_validate(peer_payload(data, PEER_FIELDS)),
        errors,
    )
    if not data.get("display_name") and not data.get("name"):
        errors = {k: v for k, v in errors.items() if k != "name"}
        errors["display_name"] = "Enter a name, like Dad's Laptop."
    if body is None or errors:
        return _peer_form(request, viewer, name, data, errors, 422)
    try:
        created = app.peers.create(name, body, viewer.actor)
    except ServiceError as exc:
        return _peer_form(request, viewer, name, data, errors, forms.service_error(exc, errors))
    return redirect(
        f"/peers/{created.id}",
        f"{created.display_name} added: download its config, show its QR code or share a link.",
    )


def peer_payload(data: dict[str, str], optional: tuple[str, ...]) -> dict[str, object]:
    """Form text as the peer schemas take it: empty optional fields unset; a keepalive of 0
    or nothing means off (null)."""
    payload: dict[str, object] = dict(forms.optional(data, *optional))
    if data.get("persistent_keepalive", "") in ("", "0"):
        payload["persistent_keepalive"] = None
    return payload


def _peer_form(
    request: Request,
    viewer: Viewer,
    interface: str,
    data: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
) -> Response:
    back = f"/interfaces/{interface}"
    return page(
        request,
        "peer_form.html",
        viewer,
        status,
        form=data,
        errors=errors,
        interface=interface,
        peer=None,
        back=back,
    )

"""Dashboard pages of one peer: status, config and QR, edit, enable/disable, delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from wirewarden.domain.names import config_file_name
from wirewarden.services.errors import Conflict, ServiceError
from wirewarden.services.schemas import PeerOut, PeerUpdate
from wirewarden.web.deps import RowId
from wirewarden.web.ui import forms
from wirewarden.web.ui.auth import Admin, App, Signed
from wirewarden.web.ui.interfaces import peer_payload
from wirewarden.web.ui.templating import NO_STORE, page, redirect
from wirewarden.web.ui.viewer import Viewer

router = APIRouter(include_in_schema=False)
EDIT_FIELDS = (
    "display_name",
    "name",
    "allowed_ips",
    "routed_ips",
    "persistent_keepalive",
    "expires_at",
)
MEMBER_EDIT_FIELDS = ("display_name", "name", "allowed_ips", "persistent_keepalive")
APPS_WINDOW = timedelta(hours=24)


def _peer(app: App, viewer: Viewer, peer_id: int) -> PeerOut:
    return app.peers.get(peer_id, viewer.actor)  # 404 for peers the viewer may not see


@router.get("/peers/{peer_id}", response_class=HTMLResponse)
def peer_page(request: Request, app: App, viewer: Signed, peer_id: RowId) -> Response:
    peer = _peer(app, viewer, peer_id)
    return _peer_page(request, app, viewer, peer)


def _peer_page(request: Request, app: App, viewer: Viewer, peer: PeerOut, **extra: Any) -> Response:
    config_error = None
    try:
        app.peers.config(peer.id, viewer.actor)  # says why there is no config (no key, endpoint)
    except Conflict as exc:
        config_error = exc.message
    return page(
        request,
        "peer.html",
        viewer,
        peer=peer,
        node=app.interfaces.get(peer.interface, viewer.actor).node,
        usage=app.usage.usage(peer.id, viewer.actor) if peer.data_cap_bytes else None,
        mappings=app.mappings.of_peer(peer.id, viewer.actor),
        # The last day, from the metrics store: the same for a peer on any node.
        apps=app.usage.apps(peer.id, viewer.actor, datetime.now(UTC) - APPS_WINDOW),
        config_error=config_error,
        config_filename=config_file_name(peer.interface, peer.name),
        share_enabled=True,
        **extra,
    )


@router.get("/peers/{peer_id}/config")
def peer_config(app: App, viewer: Signed, peer_id: RowId) -> Response:
    text, filename = app.peers.config(peer_id, viewer.actor)
    headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{filename}"'}
    return PlainTextResponse(text, headers=headers)


@router.get("/peers/{peer_id}/qr.svg")
def peer_qr(app: App, viewer: Signed, peer_id: RowId) -> Response:
    svg = app.peers.qr(peer_id, viewer.actor)
    return Response(svg, media_type="image/svg+xml", headers=NO_STORE)


@router.post("/peers/{peer_id}/share", response_class=HTMLResponse)
def share_peer(
    request: Request, app: App, viewer: Signed, peer_id: RowId, _: forms.Posted
) -> Response:
    # The public URL (WIREWARDEN_PUBLIC_URL), not this request's Host: the link is for
    # someone else, who may not reach the dashboard the way its creator does.
    share = app.shares.create(peer_id, viewer.actor)
    peer = _peer(app, viewer, peer_id)
    return _peer_page(
        request, app, viewer, peer, share_url=share.url, share_expires=share.expires_at
    )


@router.post("/peers/{peer_id}/enable")
def enable_peer(app: App, viewer: Signed, peer_id: RowId, _: forms.Posted) -> Response:
    return _set_enabled(app, viewer, peer_id, True)


@router.post("/peers/{peer_id}/disable")
def disable_peer(app: App, viewer: Signed, peer_id: RowId, _: forms.Posted) -> Response:
    return _set_enabled(app, viewer, peer_id, False)


def _set_enabled(app: App, viewer: Viewer, peer_id: int, enabled: bool) -> Response:
    peer = app.peers.set_enabled(peer_id, enabled, viewer.actor)
    done = "enabled: it can connect again." if enabled else "disabled: its traffic is blocked."
    return redirect(f"/peers/{peer_id}", f"{peer.display_name} {done}")


@router.get("/peers/{peer_id}/edit", response_class=HTMLResponse)
def edit_peer(request: Request, app: App, viewer: Signed, peer_id: RowId) -> Response:
    peer = _peer(app, viewer, peer_id)
    data = {
        "display_name": peer.display_name,
        "name": peer.name,
        "allowed_ips": peer.allowed_ips,
        "routed_ips": peer.routed_ips,
        "persistent_keepalive": str(peer.persistent_keepalive or ""),
        "expires_at": peer.expires_at.strftime("%Y-%m-%dT%H:%M") if peer.expires_at else "",
    }
    return _edit_form(request, viewer, peer, data, {})


@router.post("/peers/{peer_id}/edit", response_class=HTMLResponse)
def save_peer(
    request: Request, app: App, viewer: Signed, peer_id: RowId, form: forms.Posted
) -> Response:
    peer = _peer(app, viewer, peer_id)
    data = forms.values(form, EDIT_FIELDS if viewer.is_admin else MEMBER_EDIT_FIELDS)
    payload = peer_payload(data, ())
    if data.get("expires_at") == "":
        payload["expires_at"] = None
    if data.get("display_name") == "":
        payload["display_name"] = None  # no name of its own: the short name shows
    errors: forms.Errors = {}
    body = forms.build(lambda: PeerUpdate.model_validate(payload), errors)
    if body is None:
        return _edit_form(request, viewer, peer, data, errors, 422)
    try:
        app.peers.update(peer_id, body, viewer.actor)
    except ServiceError as exc:
        return _edit_form(request, viewer, peer, data, errors, forms.service_error(exc, errors))
    return redirect(f"/peers/{peer_id}", "Changes saved.")


def _edit_form(
    request: Request,
    viewer: Viewer,
    peer: PeerOut,
    data: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
) -> Response:
    return page(
        request,
        "peer_form.html",
        viewer,
        status,
        form=data,
        errors=errors,
        interface=peer.interface,
        peer=peer,
        back=f"/peers/{peer.id}",
    )


@router.get("/peers/{peer_id}/delete", response_class=HTMLResponse)
def confirm_delete(request: Request, app: App, viewer: Signed, peer_id: RowId) -> Response:
    return page(request, "peer_delete.html", viewer, peer=_peer(app, viewer, peer_id))


@router.post("/peers/{peer_id}/delete")
def delete_peer(
    request: Request, app: App, viewer: Signed, peer_id: RowId, _: forms.Posted
) -> Response:
    peer = _peer(app, viewer, peer_id)
    app.peers.delete(peer_id, viewer.actor)
    return redirect(f"/interfaces/{peer.interface}", f"{peer.display_name} deleted.")


@router.get("/mappings", response_class=HTMLResponse)
def mappings_page(request: Request, app: App, viewer: Admin) -> Response:
    """Every port the peers publish through this server, with a way to take one away."""
    mappings = app.mappings.live(viewer.actor)
    return page(request, "mappings.html", viewer, nav="mappings", mappings=mappings)


@router.post("/mappings/{mapping_id}/delete")
def delete_mapping(app: App, viewer: Admin, mapping_id: RowId, form: forms.Posted) -> Response:
    """An admin takes a published port away (the client's next heartbeat finds it gone)."""
    gone = app.mappings.delete(mapping_id, viewer.actor)
    what = gone.hostname or f"Port {gone.remote_port}/{gone.proto}"
    said = f"{what} no longer published."
    # Back where the button was: the list of all mappings, or the peer's page.
    back = "/mappings" if form.get("back") == "/mappings" else f"/peers/{gone.peer_id}"
    return redirect(back, said)

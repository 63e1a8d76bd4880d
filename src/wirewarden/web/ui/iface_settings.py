"""An interface's settings page: endpoint, DNS, port, MTU; disable/enable; delete (confirmed).

Every change goes through InterfaceService with the viewer as actor, so the API's rules,
validation (InterfaceUpdate) and audit events apply unchanged."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from wirewarden.services.errors import ServiceError
from wirewarden.services.schemas import InterfaceOut, InterfaceUpdate
from wirewarden.web.ui import forms
from wirewarden.web.ui.auth import App, Manager
from wirewarden.web.ui.templating import page, redirect
from wirewarden.web.ui.viewer import Viewer

router = APIRouter(include_in_schema=False)
FIELDS = ("endpoint", "dns", "listen_port", "mtu")


def _form_of(iface: InterfaceOut) -> dict[str, str]:
    return {
        "endpoint": iface.endpoint or "",
        "dns": iface.dns,
        "listen_port": str(iface.listen_port),
        "mtu": str(iface.mtu),
    }


def _settings(
    request: Request,
    viewer: Viewer,
    iface: InterfaceOut,
    data: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
    notice: str | None = None,
) -> Response:
    return page(
        request,
        "interface_settings.html",
        viewer,
        status,
        iface=iface,
        form=data,
        errors=errors,
        notice=notice,
    )


@router.get("/interfaces/{name}/settings", response_class=HTMLResponse)
def settings_page(request: Request, app: App, viewer: Manager, name: str) -> Response:
    iface = app.interfaces.get(name, viewer.actor)
    return _settings(request, viewer, iface, _form_of(iface), {})


@router.post("/interfaces/{name}/settings", response_class=HTMLResponse)
def save_settings(
    request: Request, app: App, viewer: Manager, name: str, form: forms.Posted
) -> Response:
    iface = app.interfaces.get(name, viewer.actor)
    data = forms.values(form, FIELDS)
    errors: forms.Errors = {}
    # An emptied endpoint clears it (clients then dial WIREWARDEN_PUBLIC_HOST); an emptied
    # port or MTU means "leave as it is", as they can't be unset.
    payload: dict[str, object] = {"endpoint": data.get("endpoint") or None}
    payload["dns"] = data.get("dns", "")
    payload.update(forms.optional({k: data.get(k, "") for k in ("listen_port", "mtu")}, *FIELDS))
    body = forms.build(lambda: InterfaceUpdate.model_validate(payload), errors)
    if body is None:
        return _settings(request, viewer, iface, data, errors, 422)
    try:
        saved = app.interfaces.update(name, body, viewer.actor)
    except ServiceError as exc:
        return _settings(request, viewer, iface, data, errors, forms.service_error(exc, errors))
    return _settings(request, viewer, saved, _form_of(saved), {}, notice="Settings saved.")


@router.post("/interfaces/{name}/enable")
def enable(app: App, viewer: Manager, name: str, _: forms.Posted) -> Response:
    app.interfaces.set_enabled(name, True, viewer.actor)
    return redirect(f"/interfaces/{name}/settings", f"{name} enabled.")


@router.post("/interfaces/{name}/disable")
def disable(app: App, viewer: Manager, name: str, _: forms.Posted) -> Response:
    app.interfaces.set_enabled(name, False, viewer.actor)
    return redirect(f"/interfaces/{name}/settings", f"{name} disabled: its peers cannot connect.")


@router.get("/interfaces/{name}/delete", response_class=HTMLResponse)
def confirm_delete(request: Request, app: App, viewer: Manager, name: str) -> Response:
    iface = app.interfaces.get(name, viewer.actor)
    return page(request, "interface_delete.html", viewer, iface=iface)


@router.post("/interfaces/{name}/delete")
def delete(app: App, viewer: Manager, name: str, _: forms.Posted) -> Response:
    app.interfaces.delete(name, viewer.actor)
    return redirect("/", f"Interface {name} deleted.")

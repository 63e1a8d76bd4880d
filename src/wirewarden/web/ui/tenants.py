"""Dashboard pages of tenants: the list with usage, create, plan / DNS policy / on-off, and
delete behind a confirmation. Who may do what is the service's rule (admins manage, a
tenant admin sees its own tenant)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from wirewarden.bootstrap import Container
from wirewarden.services.errors import ServiceError
from wirewarden.services.tenant_schemas import TenantCreate, TenantUpdate
from wirewarden.web.ui import forms
from wirewarden.web.ui.auth import Admin, App
from wirewarden.web.ui.templating import page, redirect
from wirewarden.web.ui.viewer import Viewer

router = APIRouter(include_in_schema=False)
CREATE_FIELDS = ("name", "plan", "dns_policy", "address", "listen_port", "endpoint")


@router.get("/tenants", response_class=HTMLResponse)
def tenants_page(request: Request, app: App, viewer: Admin) -> Response:
    return _list(request, app, viewer, {}, {})


@router.post("/tenants", response_class=HTMLResponse)
def create_tenant(request: Request, app: App, viewer: Admin, form: forms.Posted) -> Response:
    data = forms.values(form, CREATE_FIELDS)
    errors: forms.Errors = {}
    given = {k: v for k, v in data.items() if v != ""}
    body = forms.build(lambda: TenantCreate.model_validate(given), errors)
    if body is None:
        return _list(request, app, viewer, data, errors, 422)
    try:
        app.tenants.create(body, viewer.actor)
    except ServiceError as exc:
        status = forms.service_error(exc, errors)
        return _list(request, app, viewer, data, errors, status)
    return redirect("/tenants")


@router.post("/tenants/{name}", response_class=HTMLResponse)
def update_tenant(
    request: Request, app: App, viewer: Admin, name: str, form: forms.Posted
) -> Response:
    data = forms.values(form, ("plan", "dns_policy", "enabled"))
    errors: forms.Errors = {}
    given: dict[str, object] = {k: (v or None) for k, v in data.items() if k != "enabled"}
    if "enabled" in data:
        given["enabled"] = data["enabled"] == "1"
    body = forms.build(lambda: TenantUpdate.model_validate(given), errors)
    if body is None:
        return _list(request, app, viewer, {}, errors, 422)
    try:
        app.tenants.update(name, body, viewer.actor)
    except ServiceError as exc:
        status = forms.service_error(exc, errors)
        return _list(request, app, viewer, {}, errors, status)
    return redirect("/tenants")


@router.get("/tenants/{name}/delete", response_class=HTMLResponse)
def confirm_delete(request: Request, app: App, viewer: Admin, name: str) -> Response:
    tenant = app.tenants.get(name, viewer.actor)
    return page(request, "tenant_delete.html", viewer, nav="tenants", tenant=tenant)


@router.post("/tenants/{name}/delete")
def delete_tenant(
    request: Request, app: App, viewer: Admin, name: str, _: forms.Posted
) -> Response:
    app.tenants.delete(name, viewer.actor)
    return redirect("/tenants")


def _list(
    request: Request,
    app: Container,
    viewer: Viewer,
    data: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
) -> Response:
    tenants = app.tenants.list(viewer.actor)
    plans = app.plans.list(viewer.actor) if viewer.actor.is_admin else []
    return page(
        request,
        "tenants.html",
        viewer,
        status,
        nav="tenants",
        tenants=tenants,
        plans=plans,
        form=data,
        errors=errors,
    )

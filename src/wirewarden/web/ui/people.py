"""Dashboard pages for users (managers), API tokens (everyone) and the audit log."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import ADMIN, MEMBER, ROLES
from wirewarden.services.errors import ServiceError
from wirewarden.services.tokens import SCOPES
from wirewarden.web.deps import MAX_OFFSET
from wirewarden.web.ui import forms
from wirewarden.web.ui.auth import App, Manager, Signed
from wirewarden.web.ui.templating import page, redirect
from wirewarden.web.ui.viewer import Viewer

router = APIRouter(include_in_schema=False)
USER_FIELDS = ("name", "role", "password", "tenant", "device_limit", "totp_required")
AUDIT_PAGE = 50


# ---- users


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, app: App, viewer: Manager) -> Response:
    return _users(request, app, viewer, {}, {})


def _users(
    request: Request,
    app: App,
    viewer: Viewer,
    data: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
) -> Response:
    users = app.users.list(viewer.actor, limit=1000)
    roles = ROLES if viewer.role == ADMIN else (MEMBER,)
    return page(
        request,
        "users.html",
        viewer,
        status,
        nav="users",
        users=users,
        roles=roles,
        form=data,
        errors=errors,
    )


@router.post("/users", response_class=HTMLResponse)
def create_user(request: Request, app: App, viewer: Manager, form: forms.Posted) -> Response:
    data = forms.values(form, USER_FIELDS)
    payload: dict[str, object] = dict(forms.optional(data, "tenant", "device_limit"))
    payload["totp_required"] = bool(data.get("totp_required"))
    errors: forms.Errors = {}
    body = forms.build(lambda: UserCreate.model_validate(payload), errors)
    if body is None:
        return _users(request, app, viewer, data, errors, 422)
    try:
        app.users.create(body, viewer.actor)
    except ServiceError as exc:
        return _users(request, app, viewer, data, errors, forms.service_error(exc, errors))
    return redirect("/users", f"{body.name} can now sign in.")


@router.post("/users/{name}/disable")
def disable_user(
    request: Request, app: App, viewer: Manager, name: str, _: forms.Posted
) -> Response:
    app.users.set_disabled(name, True, viewer.actor)
    return redirect("/users", f"{name} disabled and signed out.")


@router.post("/users/{name}/enable")
def enable_user(
    request: Request, app: App, viewer: Manager, name: str, _: forms.Posted
) -> Response:
    app.users.set_disabled(name, False, viewer.actor)
    return redirect("/users", f"{name} enabled.")


@router.post("/users/{name}/reset-2fa")
def reset_2fa(request: Request, app: App, viewer: Manager, name: str, _: forms.Posted) -> Response:
    app.users.reset_2fa(name, viewer.actor)
    return redirect("/users", f"Two-factor sign-in of {name} reset.")


@router.get("/users/{name}/delete", response_class=HTMLResponse)
def confirm_delete_user(request: Request, app: App, viewer: Manager, name: str) -> Response:
    app.users.get(name, viewer.actor)  # 404 for users the viewer may not see
    return page(request, "user_delete.html", viewer, nav="users", target=name)


@router.post("/users/{name}/delete")
def delete_user(
    request: Request, app: App, viewer: Manager, name: str, _: forms.Posted
) -> Response:
    app.users.delete(name, viewer.actor)
    return redirect("/users", f"{name} deleted.")


# ---- tokens


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, app: App, viewer: Signed) -> Response:
    return _tokens(request, app, viewer, {}, {}, ["read"])


def _tokens(
    request: Request,
    app: App,
    viewer: Viewer,
    data: dict[str, str],
    errors: forms.Errors,
    scopes: list[str],
    status: int = 200,
    **extra: object,
) -> Response:
    return page(
        request,
        "tokens.html",
        viewer,
        status,
        nav="tokens",
        tokens=app.tokens.list(viewer.actor),
        scopes=SCOPES,
        form=data,
        form_scopes=scopes,
        errors=errors,
        **extra,
    )


@router.post("/tokens", response_class=HTMLResponse)
def create_token(request: Request, app: App, viewer: Signed, form: forms.Posted) -> Response:
    data = forms.values(form, ("name",))
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    errors: forms.Errors = {}
    try:
        token = app.tokens.create(data.get("name", ""), scopes, viewer.actor, allowed=viewer.scopes)
    except ServiceError as exc:
        status = forms.service_error(exc, errors)
        return _tokens(request, app, viewer, data, errors, scopes, status)
    # Shown in this answer only (no-store): a reload or Back does not bring it again.
    return _tokens(
        request, app, viewer, {}, {}, ["read"], 201, new_token=token, new_name=data["name"]
    )


@router.post("/tokens/{name}/revoke")
def revoke_token(
    request: Request, app: App, viewer: Signed, name: str, _: forms.Posted
) -> Response:
    app.tokens.revoke(name, viewer.actor)
    return redirect("/tokens", f"Token {name} revoked.")


# ---- audit log


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, app: App, viewer: Signed) -> Response:
    params = request.query_params
    filters = {k: params.get(k, "").strip()[:64] for k in ("who", "action", "target")}
    try:
        number = min(max(1, int(params.get("page", "1"))), MAX_OFFSET // AUDIT_PAGE)
    except ValueError:
        number = 1
    events = app.audit_log.list(
        viewer.actor,
        who=filters["who"] or None,
        action=filters["action"] or None,
        target=filters["target"] or None,
        limit=AUDIT_PAGE,
        offset=(number - 1) * AUDIT_PAGE,
    )
    query = urlencode({k: v for k, v in filters.items() if v})
    return page(
        request, "audit.html", viewer, nav="audit", events=events, filters=filters, query=query
    )

"""The account page: password, two-factor sign-in (enrol, recovery codes, off), sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from wirewarden.services.errors import ServiceError
from wirewarden.web.deps import RowId
from wirewarden.web.ui import forms
from wirewarden.web.ui.auth import App, Signed
from wirewarden.web.ui.signin import enrol_form, recovery_codes_page
from wirewarden.web.ui.templating import page, redirect
from wirewarden.web.ui.viewer import Viewer

router = APIRouter(include_in_schema=False)


def _account(
    request: Request,
    app: App,
    viewer: Viewer,
    status: int = 200,
    pw_errors: forms.Errors | None = None,
    codes_errors: forms.Errors | None = None,
    notice: str | None = None,
) -> Response:
    user_id = viewer.user_id
    return page(
        request,
        "account.html",
        viewer,
        status,
        nav="account",
        me=app.users.me(user_id),
        sessions=app.auth.list_sessions(user_id, viewer.session_id),
        codes_left=app.auth.recovery_codes_left(user_id),
        pw_errors=pw_errors or {},
        codes_errors=codes_errors or {},
        notice=notice,
    )


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, app: App, viewer: Signed) -> Response:
    return _account(request, app, viewer)


@router.post("/account/password", response_class=HTMLResponse)
def change_password(request: Request, app: App, viewer: Signed, form: forms.Posted) -> Response:
    data = forms.values(form, ("current_password", "new_password"))
    errors: forms.Errors = {}
    try:
        app.auth.change_password(
            viewer.user_id,
            data.get("current_password", ""),
            data.get("new_password", ""),
            viewer.actor,
            keep=viewer.session_id,
        )
    except ServiceError as exc:
        if exc.field in (None, "password"):
            exc.field = "new_password"
        status = forms.service_error(exc, errors)
        return _account(request, app, viewer, status, pw_errors=errors)
    return _account(request, app, viewer, notice="Password changed; other sessions signed out.")


@router.post("/account/2fa/enrol", response_class=HTMLResponse)
def start_enrol(request: Request, app: App, viewer: Signed, _: forms.Posted) -> Response:
    return enrol_form(request, app, viewer, "/account/2fa/confirm", "/account")


@router.post("/account/2fa/confirm", response_class=HTMLResponse)
def confirm_enrol(request: Request, app: App, viewer: Signed, form: forms.Posted) -> Response:
    data = forms.values(form, ("code",))
    try:
        codes = app.auth.confirm_totp(viewer.user_id, data.get("code", ""), viewer.actor)
    except ServiceError as exc:
        return enrol_form(
            request,
            app,
            viewer,
            "/account/2fa/confirm",
            "/account",
            errors={"code": exc.message},
            status=exc.status,
        )
    return recovery_codes_page(request, viewer, codes, "/account")


@router.post("/account/2fa/cancel")
def cancel_enrol(app: App, viewer: Signed, _: forms.Posted) -> Response:
    # The secret shown is dropped: a later enrolment starts from a new one.
    app.auth.cancel_totp(viewer.user_id, viewer.actor)
    return redirect("/account")


@router.post("/account/2fa/recovery-codes", response_class=HTMLResponse)
def new_codes(request: Request, app: App, viewer: Signed, form: forms.Posted) -> Response:
    data = forms.values(form, ("password",))
    try:
        codes = app.auth.new_recovery_codes(viewer.user_id, data.get("password", ""), viewer.actor)
    except ServiceError as exc:
        errors: forms.Errors = {}
        status = forms.service_error(exc, errors)
        return _account(request, app, viewer, status, codes_errors=errors)
    return recovery_codes_page(request, viewer, codes, "/account")


@router.post("/account/2fa/disable", response_class=HTMLResponse)
def disable_2fa(request: Request, app: App, viewer: Signed, form: forms.Posted) -> Response:
    data = forms.values(form, ("password",))
    try:
        app.auth.disable_totp(viewer.user_id, data.get("password", ""), viewer.actor)
    except ServiceError as exc:
        errors: forms.Errors = {}
        status = forms.service_error(exc, errors)
        return _account(request, app, viewer, status, codes_errors=errors)
    return _account(request, app, viewer, notice="Two-factor sign-in is off.")


@router.post("/account/sessions/{session_id}/revoke")
def revoke_session(
    request: Request, app: App, viewer: Signed, session_id: RowId, _: forms.Posted
) -> Response:
    app.auth.revoke_session(viewer.user_id, session_id, viewer.actor)
    return redirect("/account", "Session signed out.")


@router.post("/account/sessions/revoke-others", response_class=HTMLResponse)
def revoke_others(request: Request, app: App, viewer: Signed, _: forms.Posted) -> Response:
    count = app.auth.revoke_others(viewer.user_id, viewer.session_id, viewer.actor)
    return _account(request, app, viewer, notice=f"Signed out {count} other session(s).")

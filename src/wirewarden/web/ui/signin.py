"""Sign-in pages: password, second factor (or its enrolment when required), sign-out.

The accounts services do the work (throttling, lockout, the same answer for unknown users
and wrong passwords, sessions); these pages only turn forms into their calls and set or
clear the session cookie the way the API does.
"""

from __future__ import annotations

import base64
import secrets
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from wirewarden.bootstrap import Container
from wirewarden.services.auth import LoginResult
from wirewarden.services.errors import ServiceError
from wirewarden.services.identity import Principal
from wirewarden.web.deps import ANY_STAGE, SESSION_COOKIE, read_form, source_of
from wirewarden.web.session import clear_session_cookie, is_https, set_session_cookie
from wirewarden.web.ui import forms
from wirewarden.web.ui.auth import App, principal_of, viewer_from
from wirewarden.web.ui.setup import landing
from wirewarden.web.ui.templating import page, redirect
from wirewarden.web.ui.viewer import Viewer

router = APIRouter(include_in_schema=False)
# Before there is a session, a double-submitted cookie stops other sites from posting the
# sign-in form (login CSRF: signing a victim into the attacker's account).
LOGIN_CSRF_COOKIE = "ww_login_csrf"
TOTP, ENROL = "totp", "enrol"


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("/\\"):
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, app: App) -> Response:
    if principal_of(request, app) is not None:
        return redirect(safe_next(request.query_params.get("next")))
    return _login_form(request, safe_next(request.query_params.get("next")), {}, {})


def _login_form(
    request: Request, next_url: str, data: dict[str, str], errors: forms.Errors, status: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        None,
        status,
        form=data,
        errors=errors,
        next=next_url,
        login_csrf=token,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/login",
        max_age=3600,
    )
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, app: App) -> Response:
    form = await read_form(request)
    data = forms.values(form, ("name", "password", "next", "csrf_token"))
    next_url = safe_next(data.get("next"))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, data.get("csrf_token", "")):
        expired = {"form": "The sign-in form expired; please try again."}
        return _login_form(request, next_url, {"name": data.get("name", "")}, expired, 403)
    errors: forms.Errors = {}
    if not data.get("name"):
        errors["name"] = "Enter your user name"
    if not data.get("password"):
        errors["password"] = "Enter your password"  # noqa: S105 - a message, not a secret
    if errors:
        return _login_form(request, next_url, {"name": data.get("name", "")}, errors, 422)
    try:
        # Argon2 takes a fifth of a second (and may wait for a free slot): never on the loop.
        result = await run_in_threadpool(
            app.auth.login, data["name"], data["password"], source_of(request), _agent(request)
        )
    except ServiceError as exc:
        # One message for an unknown user and a wrong password (the service words it).
        errors["form"] = exc.message
        return _login_form(request, next_url, {"name": data["name"]}, errors, exc.status)
    return _signed_in(request, result, await run_in_threadpool(landing, app, result.role, next_url))


def _agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:255]


def _signed_in(request: Request, result: LoginResult, next_url: str) -> Response:
    if result.status == TOTP:
        target = f"/login/2fa?next={quote(next_url, safe='/')}"
    elif result.status == ENROL:
        target = f"/login/enrol?next={quote(next_url, safe='/')}"
    else:
        target = next_url
    response = redirect(target)
    set_session_cookie(request, response, result)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _half_open(request: Request, app: App, stage: str) -> Principal | None:
    return principal_of(request, app, frozenset({stage}))


@router.get("/login/2fa", response_class=HTMLResponse)
def second_factor_page(request: Request, app: App) -> Response:
    principal = _half_open(request, app, TOTP)
    if principal is None:
        return redirect("/login")
    viewer = viewer_from(principal, request)
    next_url = safe_next(request.query_params.get("next"))
    return page(request, "login_2fa.html", None, errors={}, next=next_url, csrf=viewer.csrf)


@router.post("/login/2fa", response_class=HTMLResponse)
async def second_factor(request: Request, app: App) -> Response:
    principal = await run_in_threadpool(_half_open, request, app, TOTP)
    if principal is None:
        return redirect("/login")
    viewer = viewer_from(principal, request)
    form = await forms.read_form(request, viewer)
    data = forms.values(form, ("code", "next"))
    next_url = safe_next(data.get("next"))
    token = request.cookies.get(SESSION_COOKIE, "")
    try:
        result = await run_in_threadpool(
            app.auth.complete_totp, token, data.get("code", ""), source_of(request)
        )
    except ServiceError as exc:
        errors = {"code": exc.message}
        return page(
            request,
            "login_2fa.html",
            None,
            exc.status,
            errors=errors,
            next=next_url,
            csrf=viewer.csrf,
        )
    return _signed_in(request, result, await run_in_threadpool(landing, app, result.role, next_url))


@router.get("/login/enrol", response_class=HTMLResponse)
def enrol_page(request: Request, app: App) -> Response:
    principal = _half_open(request, app, ENROL)
    if principal is None or principal.user_id is None:
        return redirect("/login")
    viewer = viewer_from(principal, request)
    next_url = safe_next(request.query_params.get("next"))
    return enrol_form(request, app, viewer, "/login/enrol", next_url, required=True)


def enrol_form(
    request: Request,
    app: Container,
    viewer: Viewer,
    action: str,
    next_url: str,
    required: bool = False,
    errors: forms.Errors | None = None,
    status: int = 200,
) -> Response:
    """The enrolment page. A new secret on the first showing; after a wrong code the same
    one again, since the user has already added it to their authenticator app."""
    enrolment = app.auth.pending_totp(viewer.user_id) if errors else None
    if enrolment is None:
        enrolment = app.auth.enrol_totp(viewer.user_id, viewer.actor)
    return page(
        request,
        "totp_enrol.html",
        None,
        status,
        csrf=viewer.csrf,
        secret=enrolment.secret,
        qr_b64=base64.b64encode(enrolment.qr_svg.encode()).decode(),
        action=action,
        next=next_url,
        required=required,
        errors=errors or {},
    )


def recovery_codes_page(
    request: Request, viewer: Viewer | None, codes: list[str], next_url: str
) -> Response:
    """The new recovery codes, shown once, with a copy button and a text file to keep."""
    text = "WireWarden recovery codes (each works once)\n\n" + "\n".join(codes) + "\n"
    return page(
        request,
        "recovery_codes.html",
        viewer,
        codes=codes,
        next=next_url,
        codes_file="data:text/plain;charset=utf-8," + quote(text),
        codes_text=text,
    )


@router.post("/login/enrol", response_class=HTMLResponse)
async def enrol(request: Request, app: App) -> Response:
    principal = await run_in_threadpool(_half_open, request, app, ENROL)
    if principal is None or principal.user_id is None:
        return redirect("/login")
    viewer = viewer_from(principal, request)
    data = forms.values(await forms.read_form(request, viewer), ("code", "next"))
    next_url = safe_next(data.get("next"))
    try:
        codes = await run_in_threadpool(
            app.auth.confirm_totp,
            principal.user_id,
            data.get("code", ""),
            viewer.actor,
            principal.session_id,
        )
    except ServiceError as exc:
        return await run_in_threadpool(
            enrol_form,
            request,
            app,
            viewer,
            "/login/enrol",
            next_url,
            required=True,
            errors={"code": exc.message},
            status=exc.status,
        )
    return recovery_codes_page(request, None, codes, next_url)


@router.post("/logout")
async def logout(request: Request, app: App) -> Response:
    principal = await run_in_threadpool(principal_of, request, app, ANY_STAGE)
    response = redirect("/login")
    if principal is not None and principal.session_id is not None:
        viewer = viewer_from(principal, request)
        await forms.read_form(request, viewer)
        await run_in_threadpool(app.auth.logout, principal.session_id, viewer.actor)
    clear_session_cookie(request, response)
    return response

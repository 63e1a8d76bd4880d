"""/api/v1/auth: sign in and out, the signed-in user, sessions, password, 2FA.

`POST /auth/login` is the only public route here. It sets the `ww_session` cookie and
answers with the session's CSRF token, which every later cookie-authenticated change must
send back as `X-CSRF-Token`.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from wirewarden.services.account_schemas import (
    CodeIn,
    LoginIn,
    LoginOut,
    MeOut,
    PasswordChange,
    PasswordIn,
    RecoveryCodesOut,
    RevokedOut,
    SessionOut,
    TotpEnrolment,
)
from wirewarden.services.auth import LoginResult
from wirewarden.services.identity import Principal
from wirewarden.web.deps import (
    SESSION_COOKIE,
    App,
    PartialWho,
    PartialWhoWrites,
    RowId,
    Who,
    WhoWrites,
    source_of,
)
from wirewarden.web.session import clear_session_cookie, set_session_cookie

router = APIRouter(prefix="/auth", tags=["auth"])


def _user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


def _signed_in(request: Request, response: Response, result: LoginResult) -> LoginOut:
    set_session_cookie(request, response, result)
    return LoginOut(
        status=result.status,
        user=result.user,
        role=result.role,
        csrf_token=result.csrf_token,
        expires_at=result.expires_at,
    )


@router.post("/login", responses={401: {}, 429: {}})
def login(app: App, request: Request, response: Response, body: LoginIn) -> LoginOut:
    """Password (and a TOTP or recovery code when 2FA is on). Public."""
    result = app.auth.login(
        body.name,
        body.password,
        source_of(request),
        _user_agent(request),
        body.totp or body.recovery_code,
    )
    return _signed_in(request, response, result)


@router.post("/login/totp", responses={401: {}, 429: {}})
def login_totp(
    app: App, request: Request, response: Response, who: PartialWhoWrites, body: CodeIn
) -> LoginOut:
    """Second step when /login answered status "totp": a TOTP or a recovery code."""
    token = request.cookies.get(SESSION_COOKIE, "")
    result = app.auth.complete_totp(token, body.code, source_of(request))
    return _signed_in(request, response, result)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(app: App, request: Request, who: PartialWhoWrites) -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if who.session_id is not None:
        app.auth.logout(who.session_id, who.actor(source_of(request)))
        clear_session_cookie(request, response)
    return response


@router.get("/me")
def me(app: App, who: PartialWho) -> MeOut:
    if who.user_id is None:  # a system token
        return MeOut(
            name=who.name, role=who.role, tenant=None, auth="token", stage=who.stage,
            csrf_token=None, totp_enabled=False, totp_required=False, device_limit=None,
            device_count=0,
        )  # fmt: skip
    user = app.users.me(who.user_id)
    return MeOut(
        name=user.name,
        role=user.role,
        tenant=user.tenant,
        auth="session" if who.kind == "session" else "token",
        stage=who.stage,
        csrf_token=who.csrf_token,
        totp_enabled=user.totp_enabled,
        totp_required=user.totp_required,
        device_limit=user.device_limit,
        device_count=user.device_count,
    )


def _user_id(who: Principal) -> int:
    if who.user_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs a user, not a system token")
    return who.user_id


@router.get("/sessions")
def sessions(app: App, who: Who) -> list[SessionOut]:
    return app.auth.list_sessions(_user_id(who), who.session_id)


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_session(app: App, request: Request, who: WhoWrites, session_id: RowId) -> Response:
    app.auth.revoke_session(_user_id(who), session_id, who.actor(source_of(request)))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/sessions/revoke-others")
def revoke_others(app: App, request: Request, who: WhoWrites) -> RevokedOut:
    """Sign out every other session of this user."""
    count = app.auth.revoke_others(_user_id(who), who.session_id, who.actor(source_of(request)))
    return RevokedOut(revoked=count)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(app: App, request: Request, who: WhoWrites, body: PasswordChange) -> Response:
    """Change your password; your other sessions end."""
    app.auth.change_password(
        _user_id(who),
        body.current_password,
        body.new_password,
        who.actor(source_of(request)),
        keep=who.session_id,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/totp/enrol")
def totp_enrol(app: App, request: Request, who: PartialWhoWrites) -> TotpEnrolment:
    """A TOTP secret with its otpauth:// URI and QR; confirm it with a code. Asked again
    before confirming (a retry, a lost answer, a wrong code), the same pending secret: the
    user may already have added it to their authenticator app. DELETE drops it."""
    _not_mid_login(who)
    user_id = _user_id(who)
    pending = app.auth.pending_totp(user_id)
    return pending or app.auth.enrol_totp(user_id, who.actor(source_of(request)))


@router.delete("/totp/enrol", status_code=status.HTTP_204_NO_CONTENT)
def totp_enrol_cancel(app: App, request: Request, who: PartialWhoWrites) -> Response:
    """Drop an enrolment not yet confirmed (2FA already on stays on)."""
    _not_mid_login(who)
    app.auth.cancel_totp(_user_id(who), who.actor(source_of(request)))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/totp/confirm")
def totp_confirm(
    app: App, request: Request, who: PartialWhoWrites, body: CodeIn
) -> RecoveryCodesOut:
    """Turn 2FA on with a code from the app; answers the ten recovery codes (shown once)."""
    _not_mid_login(who)
    codes = app.auth.confirm_totp(
        _user_id(who), body.code, who.actor(source_of(request)), who.session_id
    )
    return RecoveryCodesOut(recovery_codes=codes)


@router.post("/totp/disable", status_code=status.HTTP_204_NO_CONTENT)
def totp_disable(app: App, request: Request, who: WhoWrites, body: PasswordIn) -> Response:
    app.auth.disable_totp(_user_id(who), body.password, who.actor(source_of(request)))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/recovery-codes")
def recovery_codes(
    app: App, request: Request, who: WhoWrites, body: PasswordIn
) -> RecoveryCodesOut:
    """Ten new recovery codes; the old ones stop working."""
    codes = app.auth.new_recovery_codes(_user_id(who), body.password, who.actor(source_of(request)))
    return RecoveryCodesOut(recovery_codes=codes)


def _not_mid_login(who: Principal) -> None:
    # A "totp" session has the password but not yet the code: it may not replace the secret.
    if who.stage == "totp":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "finish signing in first")

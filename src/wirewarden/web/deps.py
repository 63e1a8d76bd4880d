"""Request dependencies: the container and who is asking (session cookie or bearer token).

The session cookie is `ww_session` (SESSION_COOKIE); web/session.py sets and clears it.
Dashboard pages have dependencies of their own (web/ui/auth.py, web/ui/forms.py; see
docs/auth.md) built on identify() and read_form() here.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection

from wirewarden.bootstrap import Container
from wirewarden.services.auth import csrf_matches
from wirewarden.services.context import Actor
from wirewarden.services.identity import FULL, Principal
from wirewarden.web.changes import ChangeThread

SESSION_COOKIE = "ww_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
ANY_STAGE = frozenset({FULL, "totp", "enrol"})
PRINCIPAL_STATE = "wirewarden.principal"  # identify()'s answer, kept in the request's state

bearer = HTTPBearer(auto_error=False, description="An API token from `wirewarden token create`")
cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="A session from POST /api/v1/auth/login; changes also need X-CSRF-Token",
)


# Dependencies that do no I/O are async: FastAPI runs a sync one on the thread pool, a hop
# that costs more than the dependency itself.
async def container(request: Request) -> Container:
    return app_of(request)


async def change_thread(request: Request) -> ChangeThread:
    found: ChangeThread = request.app.state.changes
    return found


def app_of(request: HTTPConnection) -> Container:
    """The container, for code that is not a dependency (or runs in a sync one)."""
    found: Container = request.app.state.container
    return found


def source_of(request: Request) -> str:
    return request.client.host if request.client else ""


async def read_form(request: Request) -> FormData:
    """The posted form, parsed within the settings' limits (no files: no form takes one).
    The body gate (web/bodygate.py) has already capped the bytes and withheld them from a
    request without credentials."""
    settings = app_of(request).settings
    return await request.form(max_files=0, max_fields=settings.max_form_fields)


async def _form_csrf(request: Request) -> str | None:
    """The csrf_token field of a posted HTML form; only read once a session checked out."""
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return None
    value = (await read_form(request)).get(CSRF_FIELD)
    return value if isinstance(value, str) else None


def _unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def identify(conn: HTTPConnection) -> Principal | None:
    """Who the request's credentials name: its bearer token, else its session cookie at any
    stage (the dependencies below check the stage). Remembered on the request, so the body
    gate's check and the route's dependency cost one lookup between them."""
    state: dict[str, object] = conn.scope.setdefault("state", {})
    if PRINCIPAL_STATE in state:
        return cast(Principal | None, state[PRINCIPAL_STATE])
    principal = await _lookup(conn)
    state[PRINCIPAL_STATE] = principal
    return principal


async def _lookup(conn: HTTPConnection) -> Principal | None:
    app = app_of(conn)
    scheme, credentials = get_authorization_scheme_param(conn.headers.get("authorization"))
    if scheme.lower() == "bearer" and credentials:
        # A bearer token needs no CSRF token: browsers never attach one by themselves.
        # Its check is one indexed read, cheaper here than a hop to the thread pool;
        # the once-a-minute write of its last use (which may wait for a lock) goes there.
        principal, stale = app.tokens.lookup(credentials)
        if stale is not None:
            await run_in_threadpool(app.tokens.touch, stale)
        return principal
    token = conn.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    # A session is touched on every request (idle expiry): a write, off the event loop.
    return await run_in_threadpool(app.auth.authenticate_session, token, ANY_STAGE)


async def _check_csrf(request: Request, principal: Principal) -> None:
    if principal.kind != "session" or request.method in SAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER) or await _form_csrf(request)
    if not csrf_matches(principal.csrf_token, given):
        # The browser sends the cookie by itself on cross-site posts; the token it can't.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong")


def _authenticator(stages: frozenset[str]) -> Callable[..., Coroutine[None, None, Principal]]:
    # The two credentials are parameters for the OpenAPI description; identify() reads them.
    async def authenticate(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        _cookie: Annotated[str | None, Depends(cookie)],
    ) -> Principal:
        principal = await identify(request)
        if principal is None or principal.stage not in stages:
            raise _unauthorized()
        await _check_csrf(request, principal)
        return principal

    return authenticate


# Every /api/v1 route goes through this: a full session (cookie + CSRF on changes) or a token.
authenticate = _authenticator(frozenset({FULL}))
# The few auth routes a half-signed-in session may use (second factor, 2FA enrolment, logout).
authenticate_partial = _authenticator(ANY_STAGE)


def _check_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes and "admin" not in principal.scopes:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this token lacks the {scope!r} scope")


def scoped(scope: str) -> Callable[[Request, Principal], Coroutine[None, None, Actor]]:
    async def check(
        request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Actor:
        _check_scope(principal, scope)
        return principal.actor(source_of(request))

    return check


async def _writes(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """Who is asking, for a change to their own account (a read-only token may not)."""
    _check_scope(principal, "write")
    return principal


async def _partial_writes(
    principal: Annotated[Principal, Depends(authenticate_partial)],
) -> Principal:
    _check_scope(principal, "write")
    return principal


# Row ids are INTEGER columns: 32-bit on PostgreSQL (SQLite's take 64). Bounded here, a
# larger id is a 422 naming the field on both, not a driver's out-of-range error (a 500).
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
# Paging of every list route. The database takes 64-bit offsets; past 2**31 rows no page
# holds anything, and a bound here makes a huge one a 422 naming the field, not a 500.
MAX_OFFSET = 2**31
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
App = Annotated[Container, Depends(container)]
Changes = Annotated[ChangeThread, Depends(change_thread)]
Reader = Annotated[Actor, Depends(scoped("read"))]
Writer = Annotated[Actor, Depends(scoped("write"))]
Admin = Annotated[Actor, Depends(scoped("admin"))]
Who = Annotated[Principal, Depends(authenticate)]
PartialWho = Annotated[Principal, Depends(authenticate_partial)]
# The same, for changes: a token needs the write scope.
WhoWrites = Annotated[Principal, Depends(_writes)]
PartialWhoWrites = Annotated[Principal, Depends(_partial_writes)]

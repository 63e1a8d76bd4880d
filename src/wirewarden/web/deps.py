"""Request dependencies: the container and who is asking (session cookie or bearer token).

Contract for the dashboard (see docs/auth.md):
- The session cookie is `ww_session` (SESSION_COOKIE); web/session.py sets and clears it.
- `SignedIn` (a dependency) gives the signed-in user's Principal for a page, or sends the
  browser to `/login?next=<path>` (LoginRequired, handled in web/app.py). It also checks
  the CSRF token on POST/PUT/PATCH/DELETE exactly as the API does.
- The CSRF token of the session is `principal.csrf_token`: put it in every form as a hidden
  `csrf_token` field, or send it as the `X-CSRF-Token` header (htmx: `hx-headers`).
- `principal.actor(source_of(request))` is the Actor to hand to every service call.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

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

bearer = HTTPBearer(auto_error=False, description="An API token from `wirewarden token create`")
cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="A session from POST /api/v1/auth/login; changes also need X-CSRF-Token",
)


class LoginRequired(Exception):
    """A page needs a signed-in user; the app answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


# Dependencies that do no I/O are async: FastAPI runs a sync one on the thread pool, a hop
# that costs more than the dependency itself.
async def container(request: Request) -> Container:
    return app_of(request)


async def change_thread(request: Request) -> ChangeThread:
    found: ChangeThread = request.app.state.changes
    return found


def app_of(request: Request) -> Container:
    """The container, for code that is not a dependency (or runs in a sync one)."""
    found: Container = request.app.state.container
    return found


def source_of(request: Request) -> str:
    return request.client.host if request.client else ""


async def _form_csrf(request: Request) -> str | None:
    """The csrf_token field of a posted HTML form (read here: it needs an await)."""
    if request.method in SAFE_METHODS:
        return None
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return None
    value = (await request.form()).get(CSRF_FIELD)
    return value if isinstance(value, str) else None


def _unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _session_principal(
    request: Request, form_csrf: str | None, stages: frozenset[str]
) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    principal = app_of(request).auth.authenticate_session(token, stages)
    if principal is None:
        return None
    if request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER) or form_csrf
        if not csrf_matches(principal.csrf_token, given):
            # The browser sends the cookie by itself on cross-site posts; the token it can't.
            raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong")
    return principal


def _authenticator(stages: frozenset[str]) -> Callable[..., Coroutine[None, None, Principal]]:
    async def authenticate(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        _cookie: Annotated[str | None, Depends(cookie)],
        form_csrf: Annotated[str | None, Depends(_form_csrf)],
    ) -> Principal:
        if credentials is not None:
            # A bearer token needs no CSRF token: browsers never attach one by themselves.
            # Its check is one indexed read, cheaper here than a hop to the thread pool;
            # the once-a-minute write of its last use (which may wait for a lock) goes there.
            tokens = app_of(request).tokens
            principal, stale = tokens.lookup(credentials.credentials)
            if stale is not None:
                await run_in_threadpool(tokens.touch, stale)
            if principal is None:
                raise _unauthorized()
            return principal
        # A session is touched on every request (idle expiry): a write, off the event loop.
        principal = await run_in_threadpool(_session_principal, request, form_csrf, stages)
        if principal is None:
            raise _unauthorized()
        return principal

    return authenticate


# Every /api/v1 route goes through this: a full session (cookie + CSRF on changes) or a token.
authenticate = _authenticator(frozenset({FULL}))
# The few auth routes a half-signed-in session may use (second factor, 2FA enrolment, logout).
authenticate_partial = _authenticator(frozenset({FULL, "totp", "enrol"}))


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


async def _page_form_csrf(request: Request) -> str | None:
    return await _form_csrf(request)


def signed_in(
    request: Request, form_csrf: Annotated[str | None, Depends(_page_form_csrf)]
) -> Principal:
    """For dashboard pages: the signed-in user, or a redirect to the login page."""
    principal = _session_principal(request, form_csrf, frozenset({FULL}))
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
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
SignedIn = Annotated[Principal, Depends(signed_in)]

"""Request dependencies: the container and the authenticated principal."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wirewarden.bootstrap import Container
from wirewarden.services.context import Actor
from wirewarden.services.tokens import Principal

bearer = HTTPBearer(auto_error=False, description="An API token from `wirewarden token create`")


# Dependencies that do no I/O are async: FastAPI runs a sync one on the thread pool, a hop
# that costs more than the dependency itself.
async def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    # Sessions (cookie + CSRF) will be checked here too; every route goes through this.
    if credentials is not None:
        app: Container = request.app.state.container
        principal = app.tokens.authenticate(credentials.credentials)
        if principal is not None:
            return principal
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )


def scoped(scope: str) -> Callable[[Request, Principal], Coroutine[None, None, Actor]]:
    async def check(
        request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Actor:
        if scope not in principal.scopes and "admin" not in principal.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this token lacks the {scope!r} scope")
        return principal.actor(request.client.host if request.client else "")

    return check


App = Annotated[Container, Depends(container)]
Reader = Annotated[Actor, Depends(scoped("read"))]
Writer = Annotated[Actor, Depends(scoped("write"))]

"""/api/v1/users: admins manage everyone, tenant admins the members of their tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from wirewarden.services.account_schemas import PasswordSet, UserCreate, UserOut, UserUpdate
from wirewarden.services.schemas import Page
from wirewarden.web.deps import Admin, App, Limit, Offset

router = APIRouter(prefix="/users", tags=["users"])


@router.get("")
def list_users(
    app: App,
    actor: Admin,
    q: Annotated[str | None, Query(max_length=64, description="Substring of the name")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[UserOut]:
    return app.users.list(actor, q, limit, offset)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(app: App, actor: Admin, body: UserCreate) -> UserOut:
    return app.users.create(body, actor)


@router.get("/{name}")
def get_user(app: App, actor: Admin, name: str) -> UserOut:
    return app.users.get(name, actor)


@router.patch("/{name}")
def update_user(app: App, actor: Admin, name: str, body: UserUpdate) -> UserOut:
    """Role, tenant, device limit, disabled (ends their sessions), 2FA required."""
    return app.users.update(name, body, actor)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(app: App, actor: Admin, name: str) -> Response:
    app.users.delete(name, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/password", status_code=status.HTTP_204_NO_CONTENT)
def set_password(app: App, actor: Admin, name: str, body: PasswordSet) -> Response:
    """Set a user's password; their sessions end."""
    app.users.set_password(name, body.password, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/reset-2fa", status_code=status.HTTP_204_NO_CONTENT)
def reset_2fa(app: App, actor: Admin, name: str) -> Response:
    """Turn a user's 2FA off (a lost phone); their recovery codes and sessions end."""
    app.users.reset_2fa(name, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""The page dependency that yields the signed-in viewer, and what each role may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from wirewarden.bootstrap import Container
from wirewarden.web.deps import container
from wirewarden.web.ui.viewer import Forbidden, SignInRequired, Viewer, source_of


def resolve_viewer(conn: HTTPConnection) -> Viewer | None:
    """The viewer of the session cookie, or None (no cookie, expired or revoked)."""
    _ = source_of(conn)
    return None


def current_viewer(request: Request) -> Viewer:
    viewer = resolve_viewer(request)
    if viewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return viewer


def admin_viewer(viewer: Annotated[Viewer, Depends(current_viewer)]) -> Viewer:
    if not viewer.is_admin:
        raise Forbidden
    return viewer


def own_peer_ids(app: Container, viewer: Viewer) -> set[int] | None:
    """The peers a viewer may see: None means all of them (administrators)."""
    _ = app
    return None if viewer.is_admin else set()


def check_peer(app: Container, viewer: Viewer, peer_id: int) -> None:
    allowed = own_peer_ids(app, viewer)
    if allowed is not None and peer_id not in allowed:
        raise Forbidden


App = Annotated[Container, Depends(container)]
Signed = Annotated[Viewer, Depends(current_viewer)]
Admin = Annotated[Viewer, Depends(admin_viewer)]

"""The page dependencies that yield the signed-in viewer, and what each role may watch."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from wirewarden.bootstrap import Container
from wirewarden.services.identity import FULL, Principal
from wirewarden.services.live_status import visible_peer_ids
from wirewarden.web.deps import SESSION_COOKIE, container
from wirewarden.web.ui.viewer import Forbidden, SignInRequired, Viewer, source_of

FULL_ONLY = frozenset({FULL})


def principal_of(
    conn: HTTPConnection, app: Container, stages: frozenset[str] = FULL_ONLY
) -> Principal | None:
    """The session of the `ww_session` cookie at one of `stages`, or None."""
    token = conn.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return app.auth.authenticate_session(token, stages)


def viewer_from(principal: Principal, conn: HTTPConnection) -> Viewer:
    return Viewer(principal, source_of(conn))


def resolve_viewer(conn: HTTPConnection) -> Viewer | None:
    """The viewer of a fully signed-in session, or None (no cookie, expired, revoked)."""
    principal = principal_of(conn, conn.app.state.container)
    return viewer_from(principal, conn) if principal is not None else None


def current_viewer(request: Request) -> Viewer:
    viewer = resolve_viewer(request)
    if viewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return viewer


def manager_viewer(viewer: Annotated[Viewer, Depends(current_viewer)]) -> Viewer:
    if not viewer.is_admin:
        raise Forbidden
    return viewer


def own_peer_ids(app: Container, viewer: Viewer) -> set[int] | None:
    """The peers a viewer may watch live: None means every peer (administrators)."""
    return visible_peer_ids(app.deps, viewer.actor)


App = Annotated[Container, Depends(container)]
Signed = Annotated[Viewer, Depends(current_viewer)]
Manager = Annotated[Viewer, Depends(manager_viewer)]
Admin = Manager  # pages for whoever runs interfaces: admins, and tenant-admins in their tenant

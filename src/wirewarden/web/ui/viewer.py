"""Who is looking at a dashboard page: the signed-in user's principal, role and CSRF token.

The accounts side owns users, sessions and CSRF; this is only what pages need of them, so
every page and the live socket ask one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from wirewarden.services.context import ADMIN, TENANT_ADMIN, Actor
from wirewarden.services.identity import Principal


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    source: str = ""

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def user_id(self) -> int:
        assert self.principal.user_id is not None, "pages are for users' sessions"
        return self.principal.user_id

    @property
    def session_id(self) -> int | None:
        return self.principal.session_id

    @property
    def csrf(self) -> str:
        return self.principal.csrf_token or ""

    @property
    def scopes(self) -> frozenset[str]:
        return self.principal.scopes

    @property
    def is_admin(self) -> bool:
        """Runs interfaces and users (an admin, or a tenant-admin inside their tenant)."""
        return self.role in (ADMIN, TENANT_ADMIN)

    @property
    def actor(self) -> Actor:
        return self.principal.actor(self.source)


class SignInRequired(Exception):
    """Raised by a page dependency; the app answers with a redirect to the sign-in page."""

    def __init__(self, next_url: str = "/") -> None:
        super().__init__(next_url)
        self.next_url = next_url


class Forbidden(Exception):
    """The viewer is signed in but may not see this page."""


def source_of(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else ""

"""Who is looking at a dashboard page: the signed-in user, their role and CSRF token.

The accounts side owns users, sessions and CSRF; this module only turns its session
into what the pages need, so every page and the live socket ask one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from wirewarden.services.context import Actor

ADMIN, TENANT_ADMIN, MEMBER = "admin", "tenant-admin", "member"


@dataclass(frozen=True)
class Viewer:
    user_id: int
    name: str
    role: str
    csrf: str
    source: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role in (ADMIN, TENANT_ADMIN)

    @property
    def actor(self) -> Actor:
        return Actor(f"user:{self.name}", self.source)


class SignInRequired(Exception):
    """Raised by a page dependency; the app answers with a redirect to the sign-in page."""

    def __init__(self, next_url: str = "/") -> None:
        super().__init__(next_url)
        self.next_url = next_url


class Forbidden(Exception):
    """The viewer is signed in but may not see this page."""


def source_of(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else ""

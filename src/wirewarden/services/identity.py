"""Who a request acts as: a signed-in user's session, or an API token (of a user or the system)."""

from __future__ import annotations

from dataclasses import dataclass

from wirewarden.services.context import ADMIN, Actor

ALL_SCOPES = frozenset({"read", "write", "admin"})
FULL = "full"  # a session that passed every factor; "totp" and "enrol" are half-open


@dataclass(frozen=True)
class Principal:
    name: str  # the user's name, or a system token's "token:<name>"
    scopes: frozenset[str]
    kind: str = "token"  # "token" | "session"
    user_id: int | None = None
    role: str = ADMIN
    tenant_id: int | None = None
    session_id: int | None = None
    csrf_token: str | None = None  # sessions only: every state change must echo it
    stage: str = FULL
    token_name: str | None = None

    def actor(self, source: str) -> Actor:
        via = "session" if self.kind == "session" else f"token:{self.token_name or self.name}"
        return Actor(self.name, source, self.user_id, self.role, self.tenant_id, via)

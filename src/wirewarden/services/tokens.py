"""API tokens: random, shown once, stored as SHA-256 hashes, revocable, owned by a user.

A token acts as its owner with at most its scopes (read, write, admin): a member's token
never reaches more than the member does. A token without an owner is a system token (made
by the CLI before any user existed) and acts as an admin.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import cast

from pydantic import BaseModel
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain.names import check_name
from wirewarden.services.context import Actor, audit
from wirewarden.services.errors import Conflict, Forbidden, Invalid, NotFound
from wirewarden.services.identity import Principal
from wirewarden.store.db import engine_of
from wirewarden.store.tables import ApiToken, User

PREFIX = "ww_"
SCOPES = ("read", "write", "admin")
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often

# One statement per API call, built once: the token with its owner's standing.
_TOKENS, _USERS = cast(Table, ApiToken.__table__), cast(Table, User.__table__)
_BY_HASH = (
    select(
        _TOKENS.c.id,
        _TOKENS.c.name,
        _TOKENS.c.scopes,
        _TOKENS.c.revoked_at,
        _TOKENS.c.last_used_at,
        _TOKENS.c.user_id,
        _USERS.c.name.label("user_name"),
        _USERS.c.role,
        _USERS.c.tenant_id,
        _USERS.c.disabled,
    )
    .outerjoin(_USERS, _TOKENS.c.user_id == _USERS.c.id)
    .where(_TOKENS.c.token_hash == bindparam("hash"))
)
_TOUCH = (
    update(_TOKENS).where(_TOKENS.c.id == bindparam("token")).values(last_used_at=bindparam("now"))
)

__all__ = ["PREFIX", "SCOPES", "Principal", "TokenOut", "TokenService", "hash_token"]


class TokenOut(BaseModel):
    name: str
    prefix: str
    scopes: list[str]
    user: str | None = None
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(
        self,
        name: str,
        scopes: list[str],
        actor: Actor,
        owner: str | None = None,
        allowed: frozenset[str] | None = None,
    ) -> str:
        """A new token for `owner` (default: the actor's own user), printed once.
        `allowed` caps the scopes (a read-only caller cannot mint a write token)."""
        try:
            check_name(name)
        except ValueError as exc:
            raise Invalid(str(exc), "name") from exc
        unknown = set(scopes) - set(SCOPES)
        if unknown or not scopes:
            raise Invalid(f"scopes must be among {', '.join(SCOPES)}", "scopes")
        if allowed is not None and not set(scopes) <= allowed and "admin" not in allowed:
            raise Forbidden("a token cannot have scopes its maker lacks", "scopes")
        token = PREFIX + secrets.token_urlsafe(32)
        try:
            with self.sessions.begin() as db:
                user_id = self._owner(db, owner, actor)
                db.add(
                    ApiToken(
                        name=name,
                        token_hash=hash_token(token),
                        prefix=token[:10],
                        scopes=",".join(scopes),
                        user_id=user_id,
                    )
                )
                audit(db, actor, "token.create", name, scopes=scopes, user=owner)
        except IntegrityError as exc:
            raise Conflict(f"a token named {name!r} exists", "name") from exc
        return token

    def _owner(self, db: Session, owner: str | None, actor: Actor) -> int | None:
        if owner is None:
            return actor.user_id
        user = db.scalar(select(User).where(User.name == owner))
        if user is None:
            raise Invalid(f"no user named {owner!r}", "user")
        if user.id != actor.user_id and not actor.is_admin:
            raise Forbidden("only admins create tokens for other users", "user")
        return user.id

    def list(self, actor: Actor | None = None) -> list[TokenOut]:
        """Every token for an admin (or the CLI); one's own for anyone else."""
        with self.sessions() as db:
            query = select(ApiToken, User.name).outerjoin(User, ApiToken.user_id == User.id)
            if actor is not None and not actor.is_admin:
                query = query.where(ApiToken.user_id == actor.user_id)
            return [_out(t, owner) for t, owner in db.execute(query.order_by(ApiToken.name))]

    def revoke(self, name: str, actor: Actor) -> None:
        with self.sessions.begin() as db:
            token = db.scalar(select(ApiToken).where(ApiToken.name == name))
            if token is None or not (actor.is_admin or token.user_id == actor.user_id):
                raise NotFound(f"token {name!r} not found")
            token.revoked_at = datetime.now(UTC)
            audit(db, actor, "token.revoke", name)

    def authenticate(self, token: str) -> Principal | None:
        """The token's principal, read on every API call (so a revocation counts at once)."""
        principal, stale = self.lookup(token)
        if stale is not None:
            self.touch(stale)
        return principal

    def lookup(self, token: str) -> tuple[Principal | None, int | None]:
        """The principal, and the token's id when its last use is due to be written: one
        indexed read, with no write, so that callers on an event loop may run it there."""
        if not token.startswith(PREFIX):
            return None, None
        # A bare connection: a session around one read would double its cost.
        with engine_of(self.sessions).connect() as conn:
            row = conn.execute(_BY_HASH, {"hash": hash_token(token)}).first()
        if row is None or row.revoked_at is not None:
            return None, None
        last = row.last_used_at
        stale = row.id if last is None or datetime.now(UTC) - last > TOUCH_EVERY else None
        scopes = frozenset(row.scopes.split(","))
        if row.user_id is None:
            return Principal(f"token:{row.name}", scopes, token_name=row.name), stale
        if row.user_name is None or row.disabled:
            return None, None
        principal = Principal(
            row.user_name,
            scopes,
            user_id=row.user_id,
            role=row.role,
            tenant_id=row.tenant_id,
            token_name=row.name,
        )
        return principal, stale

    def touch(self, token_id: int) -> None:
        with self.sessions.begin() as db:
            db.execute(_TOUCH, {"token": token_id, "now": datetime.now(UTC)})


def _out(token: ApiToken, owner: str | None) -> TokenOut:
    return TokenOut(
        name=token.name,
        prefix=token.prefix,
        scopes=token.scopes.split(","),
        user=owner,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked=token.revoked_at is not None,
    )

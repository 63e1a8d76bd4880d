"""API tokens: random, shown once, stored as SHA-256 hashes, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain.names import check_name
from wirewarden.services.context import Actor, audit
from wirewarden.services.errors import Conflict, Invalid, NotFound
from wirewarden.store.tables import ApiToken

PREFIX = "ww_"
SCOPES = ("read", "write", "admin")


@dataclass(frozen=True)
class Principal:
    """Who a request acts as; sessions and users slot in beside tokens later."""

    name: str
    scopes: frozenset[str]
    kind: str = "token"

    def actor(self, source: str) -> Actor:
        return Actor(f"{self.kind}:{self.name}", source)


class TokenOut(BaseModel):
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(self, name: str, scopes: list[str], actor: Actor) -> str:
        try:
            check_name(name)
        except ValueError as exc:
            raise Invalid(str(exc), "name") from exc
        unknown = set(scopes) - set(SCOPES)
        if unknown or not scopes:
            raise Invalid(f"scopes must be among {', '.join(SCOPES)}", "scope")
        token = PREFIX + secrets.token_urlsafe(32)
        try:
            with self.sessions.begin() as db:
                db.add(
                    ApiToken(
                        name=name,
                        token_hash=hash_token(token),
                        prefix=token[:10],
                        scopes=",".join(scopes),
                    )
                )
                audit(db, actor, "token.create", name, scopes=scopes)
        except IntegrityError as exc:
            raise Conflict(f"a token named {name!r} exists", "name") from exc
        return token

    def list(self) -> list[TokenOut]:
        with self.sessions() as db:
            return [_out(t) for t in db.scalars(select(ApiToken).order_by(ApiToken.name))]

    def revoke(self, name: str, actor: Actor) -> None:
        with self.sessions.begin() as db:
            token = db.scalar(select(ApiToken).where(ApiToken.name == name))
            if token is None:
                raise NotFound(f"token {name!r} not found")
            token.revoked_at = datetime.now(UTC)
            audit(db, actor, "token.revoke", name)

    def authenticate(self, token: str) -> Principal | None:
        if not token.startswith(PREFIX):
            return None
        with self.sessions() as db:
            row = db.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
            if row is None or row.revoked_at is not None:
                return None
            return Principal(row.name, frozenset(row.scopes.split(",")))


def _out(token: ApiToken) -> TokenOut:
    return TokenOut(
        name=token.name,
        prefix=token.prefix,
        scopes=token.scopes.split(","),
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked=token.revoked_at is not None,
    )

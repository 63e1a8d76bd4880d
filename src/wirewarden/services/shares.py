"""One-time share links: a peer's config and QR behind a random URL that works once.

The link's token (256 random bits) is in the URL only; the database keeps its SHA-256.
Opening it marks it used in the same statement that checks it (so two racing opens cannot
both win), and writes an audit event. A link lives only as long as its creator's account:
disabling the creator ends their open links (UserService), deleting it deletes them (the
foreign key), and a link whose creator is disabled by any other path does not open.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain.qr import config_qr_svg
from wirewarden.services.account_schemas import ShareOut
from wirewarden.services.auth import hash_secret
from wirewarden.services.context import Actor, audit
from wirewarden.services.errors import NotFound
from wirewarden.services.peers import PeerService
from wirewarden.store.tables import ShareLink, User

PATH = "/s/"
GONE = "this link has expired or was already used"


@dataclass(frozen=True)
class SharedConfig:
    peer: str
    filename: str
    config: str
    qr_svg: str


class ShareService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        peers: PeerService,
        public_url: str,
        default_hours: int = 24,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = sessions
        self.peers = peers
        # Absolute links: they are pasted into chats and mails, far from the dashboard.
        self.base = public_url.rstrip("/")
        self.default_hours = default_hours
        self.clock = clock

    def create(self, peer_id: int, actor: Actor, hours: int | None = None) -> ShareOut:
        """A link to the peer's config; the actor must be allowed to download it."""
        self.peers.config(peer_id, actor)  # 404 for others' peers, 409 with no private key
        token = secrets.token_urlsafe(32)
        expires = self.clock() + timedelta(hours=hours or self.default_hours)
        with self.db.begin() as db:
            peer, iface = self.peers.find(db, peer_id, actor)
            db.add(
                ShareLink(
                    token_hash=hash_secret(token),
                    peer_id=peer_id,
                    created_by=actor.name[:64],
                    created_by_id=actor.user_id,
                    created_at=self.clock(),
                    expires_at=expires,
                )
            )
            audit(
                db,
                actor,
                "share.create",
                f"{iface.name}/{peer.name}",
                iface.tenant_id,
                expires_at=str(expires),
            )
        return ShareOut(url=self.base + PATH + token, expires_at=expires)

    def is_open(self, token: str) -> bool:
        with self.db() as db:
            found = db.scalar(select(ShareLink.id).where(*_usable(token, self.clock())))
            return found is not None

    def redeem(self, token: str, source: str) -> SharedConfig:
        """The config and QR, once; NotFound afterwards or after expiry."""
        now = self.clock()
        with self.db.begin() as db:
            taken = db.execute(
                update(ShareLink)
                .where(*_usable(token, now))
                .values(used_at=now, used_from=source[:64])
                .returning(ShareLink.peer_id)
            ).scalar()
            if taken is None:
                raise NotFound(GONE)
            peer, iface = self.peers.find(db, taken)
            # Inside the transaction: if the config cannot be made, the link stays unused.
            text, filename = self.peers.config(taken)
            audit(
                db,
                Actor("share-link", source),
                "share.open",
                f"{iface.name}/{peer.name}",
                iface.tenant_id,
            )
        shown = peer.display_name or peer.name  # what the recipient calls the device
        return SharedConfig(shown, filename, text, config_qr_svg(text))


def _usable(token: str, now: datetime) -> tuple[ColumnElement[bool], ...]:
    """The link of this token, unused, unexpired, made by the system or an enabled user."""
    enabled = select(User.id).where(User.id == ShareLink.created_by_id, ~User.disabled)
    return (
        ShareLink.token_hash == hash_secret(token),
        ShareLink.used_at.is_(None),
        ShareLink.expires_at > now,
        ShareLink.created_by_id.is_(None) | enabled.exists(),
    )


def end_links_of(db: Session, user_id: int) -> int:
    """Delete the unused links a user made (they are disabled): none of them opens again,
    even once the account is enabled. Used ones stay as the record of who opened them."""
    done = db.execute(
        delete(ShareLink).where(ShareLink.created_by_id == user_id, ShareLink.used_at.is_(None))
    )
    return int(done.rowcount)  # type: ignore[attr-defined]

"""The dashboard's peer table: search, sort and page on the server, cheap at 10k peers.

Columns stored in the database sort in SQL; columns that only the kernel knows (handshake,
transfer, online) sort in Python over (id, public key) pairs of the filtered peers, then
only the visible page is loaded and rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from wirewarden.domain.state import PeerStats
from wirewarden.services import access
from wirewarden.services.context import Actor, Deps
from wirewarden.services.peers import ONLINE_SECONDS, PeerService
from wirewarden.services.schemas import Page, PeerOut
from wirewarden.store.tables import Interface, Peer, User

SQL_SORTS: dict[str, Any] = {
    "name": Peer.name,
    "address": Peer.host_index,
    "status": Peer.enabled,
    "created": Peer.created_at,
}
LIVE_SORTS: dict[str, Callable[[PeerStats | None], int]] = {
    "handshake": lambda s: s.latest_handshake if s else 0,
    "transfer": lambda s: s.rx_bytes + s.tx_bytes if s else 0,
}
SORTS = (*SQL_SORTS, *LIVE_SORTS)
MAX_PAGE = 200


@dataclass(frozen=True)
class PeerQuery:
    """What the table shows: a search string, a sort column and direction, one page."""

    q: str = ""
    sort: str = "name"
    desc: bool = False
    limit: int = 50
    offset: int = 0

    def normalised(self) -> PeerQuery:
        return PeerQuery(
            q=self.q.strip()[:64],
            sort=self.sort if self.sort in SORTS else "name",
            desc=self.desc,
            limit=max(1, min(self.limit, MAX_PAGE)),
            offset=max(0, self.offset),
        )


@dataclass(frozen=True)
class Summary:
    peers: int
    online: int
    rx_bytes: int
    tx_bytes: int


def is_online(stats: PeerStats | None, now: float) -> bool:
    if stats is None or not stats.latest_handshake:
        return False
    return now - stats.latest_handshake < ONLINE_SECONDS


class PeerTable:
    def __init__(self, deps: Deps, peers: PeerService) -> None:
        self.deps = deps
        self.peers = peers

    def page(self, interface: str, query: PeerQuery, actor: Actor) -> Page[PeerOut]:
        """One page of the interface's peers the actor may see (a member: their own)."""
        query = query.normalised()
        with self.deps.sessions() as db:
            iface = self.peers.interfaces.find(db, interface, actor)
            base = self._filtered(select(Peer), iface, query, actor)
            stats = self.peers._stats(iface.name)
            if query.sort in LIVE_SORTS:
                total, rows = self._live_page(db, iface, query, stats, actor)
            else:
                total, rows = self._sql_page(db, base, query)
            owners = owner_names(db, rows)
            items = [self.peers.to_out(p, iface.name, stats, owners) for p in rows]
            return Page(items=items, total=total, limit=query.limit, offset=query.offset)

    @staticmethod
    def _filtered(stmt: Any, iface: Interface, query: PeerQuery, actor: Actor) -> Any:
        stmt = stmt.where(Peer.interface_id == iface.id, access.own_peers(actor))
        if query.q:
            # Name or address anywhere, public key by its beginning (as users copy it).
            stmt = stmt.where(
                or_(
                    Peer.name.contains(query.q, autoescape=True),
                    Peer.ipv4.contains(query.q, autoescape=True),
                    Peer.public_key.startswith(query.q, autoescape=True),
                )
            )
        return stmt

    def _sql_page(self, db: Session, base: Select[Any], query: PeerQuery) -> tuple[int, list[Peer]]:
        column = SQL_SORTS[query.sort]
        order = [column.desc() if query.desc else column.asc()]
        if query.sort != "name":
            order.append(Peer.name.asc())  # a stable order among equal keys
        total = db.scalar(select(func.count()).select_from(base.subquery())) or 0
        stmt = base.order_by(*order).limit(query.limit).offset(query.offset)
        return total, list(db.scalars(stmt))

    def _live_page(
        self,
        db: Session,
        iface: Interface,
        query: PeerQuery,
        stats: dict[str, PeerStats],
        actor: Actor,
    ) -> tuple[int, list[Peer]]:
        keys = self._filtered(select(Peer.id, Peer.public_key, Peer.name), iface, query, actor)
        rows = [tuple(r) for r in db.execute(keys)]
        key_of = LIVE_SORTS[query.sort]
        # Names break ties so equal counters (all zero before any handshake) page stably.
        rows.sort(key=lambda r: r[2])
        rows.sort(key=lambda r: key_of(stats.get(r[1])), reverse=query.desc)
        ids = [r[0] for r in rows[query.offset : query.offset + query.limit]]
        found = {p.id: p for p in db.scalars(select(Peer).where(Peer.id.in_(ids)))}
        return len(rows), [found[i] for i in ids if i in found]

    def summary(self, interface: str, actor: Actor) -> Summary:
        """Peer count, online count and transfer of one interface's peers the actor sees."""
        with self.deps.sessions() as db:
            iface = self.peers.interfaces.find(db, interface, actor)
            stmt = select(Peer.public_key).where(
                Peer.interface_id == iface.id, access.own_peers(actor)
            )
            keys = list(db.scalars(stmt))
        stats = self.peers._stats(interface)
        now = datetime.now(UTC).timestamp()
        online = rx = tx = 0
        for key in keys:
            live = stats.get(key)
            if live is not None:
                online += is_online(live, now)
                rx, tx = rx + live.rx_bytes, tx + live.tx_bytes
        return Summary(len(keys), online, rx, tx)


def owner_names(db: Session, rows: Sequence[Peer]) -> dict[int, str]:
    """Names of the users owning these peers, for the owner column."""
    ids = {p.owner_id for p in rows if p.owner_id is not None}
    if not ids:
        return {}
    return {
        uid: name for uid, name in db.execute(select(User.id, User.name).where(User.id.in_(ids)))
    }

"""The dashboard's peer table: search, sort and page on the server, cheap at 10k peers.

Columns stored in the database sort in SQL; columns that only the kernel knows (handshake,
transfer, online) sort in Python over (id, public key) pairs of the filtered peers, then
only the visible page is loaded and rendered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from wirewarden.domain.state import PeerStats
from wirewarden.domain.traffic import is_online as handshake_online
from wirewarden.services import access, keyset
from wirewarden.services.context import MEMBER, Actor, Deps, node_name_of
from wirewarden.services.errors import Invalid
from wirewarden.services.peers import PeerService
from wirewarden.services.schemas import KeyPage, PeerOut
from wirewarden.store.tables import Interface, Node, Peer, User

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
ROW_CACHE = 32  # filtered id lists kept for live sorts (search strings, members)


@dataclass(frozen=True)
class PeerQuery:
    """What the table shows: a search string, a sort column and direction, one page."""

    q: str = ""
    sort: str = "name"
    desc: bool = False
    limit: int = 50
    offset: int = 0
    after: str = ""  # a page's `next` cursor (name order): the page after it, by key

    def normalised(self) -> PeerQuery:
        return PeerQuery(
            q=self.q.strip()[:64],
            sort=self.sort if self.sort in SORTS else "name",
            desc=self.desc,
            limit=max(1, min(self.limit, MAX_PAGE)),
            offset=max(0, self.offset),
            after=self.after[: keyset.MAX_KEY * 2],
        )

    @property
    def by_key(self) -> bool:
        """Paged by the cursor through the name index: no read of every filtered id."""
        return bool(self.after) and self.sort == "name" and not self.desc


@dataclass(frozen=True)
class Summary:
    peers: int
    online: int
    rx_bytes: int
    tx_bytes: int


def is_online(stats: PeerStats | None, now: float) -> bool:
    return stats is not None and handshake_online(stats.latest_handshake, now)


class PeerTable:
    def __init__(self, deps: Deps, peers: PeerService) -> None:
        self.deps = deps
        self.peers = peers
        self._rows: dict[tuple[object, ...], tuple[list[int], list[str]]] = {}
        # (id of a cached key list, sort, desc) -> (the dump it was sorted by, the order,
        # the key list itself: held so its id is not reused while the entry lives)
        self._orders: dict[tuple[int, str, bool], tuple[object, list[int], list[str]]] = {}
        self._lock = threading.Lock()

    def page(self, interface: str, query: PeerQuery, actor: Actor) -> KeyPage[PeerOut]:
        """One page of the interface's peers the actor may see (a member: their own)."""
        query = query.normalised()
        with self.deps.sessions() as db:
            iface = self.peers.interfaces.find(db, interface, actor)
            base = self._filtered(select(Peer), iface, query, actor)
            stats = self.peers._stats(iface.name)
            offset = query.offset
            if query.by_key:
                total, rows, offset = self._key_page(db, base, query)
            elif query.sort in LIVE_SORTS:
                total, rows = self._live_page(db, iface, query, stats, actor)
            elif query.sort == "name":
                total, rows = self._name_page(db, iface, query, actor)
            else:
                total, rows = self._sql_page(db, base, query)
            owners = owner_names(db, rows)
            node = node_name_of(db, iface.node_id)
            items = [self.peers.to_out(p, iface.name, stats, owners, node) for p in rows]
            following = None
            if query.sort == "name" and not query.desc and rows and offset + len(rows) < total:
                following = keyset.encode(rows[-1].name)
            return KeyPage(
                items=items, total=total, limit=query.limit, offset=offset, next=following
            )

    @staticmethod
    def _filtered(stmt: Any, iface: Interface, query: PeerQuery, actor: Actor) -> Any:
        stmt = stmt.where(Peer.interface_id == iface.id, access.own_peers(actor))
        if query.q:
            # Name (slug, or display name in any case) or address anywhere, public key by
            # its beginning (as users copy it).
            stmt = stmt.where(
                or_(
                    Peer.name.contains(query.q, autoescape=True),
                    Peer.display_name.icontains(query.q, autoescape=True),
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

    @staticmethod
    def _key_page(db: Session, base: Select[Any], query: PeerQuery) -> tuple[int, list[Peer], int]:
        """The page after the cursor through the name index, and its position (how many
        come before it, for "Page N of M"). A cursor this server did not make: the first
        page, as a page link past the end would be."""
        try:
            key = keyset.decode(query.after)
        except Invalid:
            key = ""
        total = db.scalar(select(func.count()).select_from(base.subquery())) or 0
        before = base.where(Peer.name <= key).subquery()
        offset = db.scalar(select(func.count()).select_from(before)) or 0
        stmt = base.where(Peer.name > key).order_by(Peer.name).limit(query.limit)
        return total, list(db.scalars(stmt)), offset

    def _name_page(
        self, db: Session, iface: Interface, query: PeerQuery, actor: Actor
    ) -> tuple[int, list[Peer]]:
        """The default order, from the cached name-ordered ids: no count and no deep OFFSET
        walk per page."""
        ids, _ = self._by_name(db, iface, query, actor)
        ordered = ids[::-1] if query.desc else ids
        return len(ids), self._load(db, ordered[query.offset : query.offset + query.limit])

    @staticmethod
    def _load(db: Session, chosen: list[int]) -> list[Peer]:
        found = {p.id: p for p in db.scalars(select(Peer).where(Peer.id.in_(chosen)))}
        return [found[i] for i in chosen if i in found]

    def _live_page(
        self,
        db: Session,
        iface: Interface,
        query: PeerQuery,
        stats: dict[str, PeerStats],
        actor: Actor,
    ) -> tuple[int, list[Peer]]:
        ids, keys = self._by_name(db, iface, query, actor)
        order = self._order(keys, stats, query)
        chosen = [ids[i] for i in order[query.offset : query.offset + query.limit]]
        return len(ids), self._load(db, chosen)

    def _order(self, keys: list[str], stats: dict[str, PeerStats], query: PeerQuery) -> list[int]:
        """Positions of `keys` by a live counter. One stable sort of positions already in
        name order: equal counters (all zero before any handshake) keep their names' order,
        so pages never shuffle. Kept while the same dump is current (the cache refreshes it
        every few seconds), so paging through costs a slice."""
        with self._lock:
            cached = self._orders.get((id(keys), query.sort, query.desc))
        if cached is not None and cached[0] is stats:
            return cached[1]
        key_of = LIVE_SORTS[query.sort]
        metric = [key_of(stats.get(k)) for k in keys]
        order = sorted(range(len(keys)), key=metric.__getitem__, reverse=query.desc)
        with self._lock:
            self._orders[(id(keys), query.sort, query.desc)] = (stats, order, keys)
            while len(self._orders) > ROW_CACHE:
                self._orders.pop(next(iter(self._orders)))
        return order

    def _by_name(
        self, db: Session, iface: Interface, query: PeerQuery, actor: Actor
    ) -> tuple[list[int], list[str]]:
        """Ids and public keys of the filtered peers in name order, cached until the node's
        revision moves (every peer change bumps it): paging through a live sort costs one
        sort of the counters, not a read of 10k rows."""
        revision = db.scalar(select(Node.revision).where(Node.id == iface.node_id))
        member = actor.user_id if actor.role == MEMBER else None
        cache_key = (iface.id, revision, query.q, member)
        with self._lock:
            found = self._rows.get(cache_key)
        if found is None:
            stmt = self._filtered(select(Peer.id, Peer.public_key), iface, query, actor)
            rows = db.execute(stmt.order_by(Peer.name)).all()
            found = ([r[0] for r in rows], [r[1] for r in rows])
            with self._lock:
                self._rows[cache_key] = found
                while len(self._rows) > ROW_CACHE:
                    self._rows.pop(next(iter(self._rows)))
        return found

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

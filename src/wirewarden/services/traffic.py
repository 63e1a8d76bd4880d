"""Use cases over the traffic store: a peer's or interface's history, usage this period, top
peers. Reading only; the collector (wirewarden.metrics) writes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain.traffic import (
    MAX_EXPLICIT_POINTS,
    MINUTE,
    ceil_to,
    choose_step,
    epoch,
    floor_to,
    tiers_for_step,
)
from wirewarden.services import access
from wirewarden.services.context import SYSTEM, Actor
from wirewarden.services.errors import Invalid, NotFound
from wirewarden.store.tables import Interface, Node, Peer
from wirewarden.store.tsdb import Kind, NameCount, TrafficStore

DEFAULT_RANGE = timedelta(hours=24)


class TrafficPoint(BaseModel):
    t: datetime = Field(description="Start of the bucket (UTC)")
    rx_bytes: int = Field(description="Received from the peer(s) in the bucket: their upload")
    tx_bytes: int = Field(description="Sent to the peer(s) in the bucket: their download")


class TrafficSeries(BaseModel):
    since: datetime
    until: datetime
    step: int = Field(description="Bucket width in seconds")
    rx_bytes: int
    tx_bytes: int
    points: list[TrafficPoint]


class EndpointSeen(BaseModel):
    at: datetime = Field(description="When the collector first saw the peer at this endpoint")
    endpoint: str


class TopPeer(BaseModel):
    id: int
    name: str
    interface: str
    rx_bytes: int
    tx_bytes: int
    total_bytes: int


class TopPeers(BaseModel):
    since: datetime
    until: datetime
    items: list[TopPeer]


def _at(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@dataclass(frozen=True)
class Buckets:
    """A series as parallel lists: bucket starts (Unix seconds), rx and tx bytes."""

    since: int
    until: int
    step: int
    t: list[int]
    rx: list[int]
    tx: list[int]

    def series(self) -> TrafficSeries:
        # Built without validation: every value here is already an int we computed.
        points = [
            TrafficPoint.model_construct(t=_at(t), rx_bytes=rx, tx_bytes=tx)
            for t, rx, tx in zip(self.t, self.rx, self.tx, strict=True)
        ]
        return TrafficSeries.model_construct(
            since=_at(self.since),
            until=_at(self.until),
            step=self.step,
            rx_bytes=sum(self.rx),
            tx_bytes=sum(self.tx),
            points=points,
        )


class TrafficService:
    def __init__(self, sessions: sessionmaker[Session], store: TrafficStore, node: str) -> None:
        self.sessions, self.store, self.node = sessions, store, node
        self._recent: dict[tuple[int, int, str | None, object], tuple[float, TopPeers]] = {}

    # ---- series

    def peer_series(
        self,
        peer_id: int,
        since: datetime | None = None,
        until: datetime | None = None,
        step: int | None = None,
        actor: Actor = SYSTEM,
    ) -> TrafficSeries:
        return self.peer_buckets(peer_id, since, until, step, actor).series()

    def interface_series(
        self,
        name: str,
        since: datetime | None = None,
        until: datetime | None = None,
        step: int | None = None,
        actor: Actor = SYSTEM,
    ) -> TrafficSeries:
        return self.interface_buckets(name, since, until, step, actor).series()

    def peer_buckets(
        self,
        peer_id: int,
        since: datetime | None = None,
        until: datetime | None = None,
        step: int | None = None,
        actor: Actor = SYSTEM,
    ) -> Buckets:
        """A peer's series as plain lists (what a chart draws, no model per point)."""
        self._peer(peer_id, actor)
        return self._buckets("peer", peer_id, since, until, step)

    def interface_buckets(
        self,
        name: str,
        since: datetime | None = None,
        until: datetime | None = None,
        step: int | None = None,
        actor: Actor = SYSTEM,
    ) -> Buckets:
        access.require_manager(actor)  # an interface's total is everyone's traffic on it
        return self._buckets("interface", self._interface_id(name, actor), since, until, step)

    def _buckets(
        self,
        kind: Kind,
        series_id: int,
        since: datetime | None,
        until: datetime | None,
        step: int | None,
    ) -> Buckets:
        now = int(datetime.now(UTC).timestamp())
        lo, hi = _range(since, until, now)
        if step is not None and step < 1:
            raise Invalid("step must be a positive number of seconds", "step")
        chosen = choose_step(lo, hi, now, step)
        lo, hi = floor_to(lo, chosen), ceil_to(hi, chosen)
        if (hi - lo) // chosen > MAX_EXPLICIT_POINTS:
            raise Invalid(
                f"{(hi - lo) // chosen} points asked; at most {MAX_EXPLICIT_POINTS}", "step"
            )
        found = self.store.series(kind, [series_id], lo, hi, chosen, tiers_for_step(chosen))
        times = list(range(lo, hi, chosen))
        none = (0, 0)
        values = [found.get(t, none) for t in times]
        return Buckets(lo, hi, chosen, times, [v[0] for v in values], [v[1] for v in values])

    # ---- usage over a period (the data caps read it through UsageService)

    def between(self, peer_id: int, start: datetime, end: datetime) -> tuple[int, int]:
        """(rx, tx) bytes of a peer from `start` up to and including the minute of `end`."""
        lo = floor_to(epoch(start), MINUTE)
        hi = ceil_to(epoch(end) + 1, MINUTE)
        return self.store.totals("peer", lo, hi, [peer_id]).get(peer_id, (0, 0))

    def apps_between(
        self, peer_id: int, start: datetime, end: datetime
    ) -> dict[str, tuple[int, int, int]]:
        """A peer's classified traffic per class, (bytes, packets, flows), from `start` up
        to and including the minute of `end`."""
        lo, hi = floor_to(epoch(start), MINUTE), ceil_to(epoch(end) + 1, MINUTE)
        return self.store.app_totals(peer_id, lo, hi) if lo < hi else {}

    def names_since(self, peer_id: int, start: datetime, limit: int = 20) -> list[NameCount]:
        """The server names of a peer's classified flows since `start` (by the hour), most
        flows first (kept only with WIREWARDEN_CLASSIFY_NAMES)."""
        return self.store.top_names(peer_id, epoch(start), limit)

    def since_each(self, starts: dict[int, datetime], end: datetime) -> int:
        """Bytes (both ways) of several peers, each from its own start up to `end`: one
        store read per distinct start (peers of one reset day share theirs)."""
        by_start: dict[datetime, list[int]] = {}
        for peer_id, start in starts.items():
            by_start.setdefault(start, []).append(peer_id)
        hi = ceil_to(epoch(end) + 1, MINUTE)
        total = 0
        for start, ids in by_start.items():
            found = self.store.totals("peer", floor_to(epoch(start), MINUTE), hi, ids)
            total += sum(rx + tx for rx, tx in found.values())
        return total

    # ---- top peers

    def top(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10,
        interface: str | None = None,
        actor: Actor = SYSTEM,
    ) -> TopPeers:
        """Peers that moved the most bytes, among those the actor may see."""
        now = int(datetime.now(UTC).timestamp())
        lo, hi = _range(since, until, now)
        lo, hi = floor_to(lo, MINUTE), ceil_to(hi, MINUTE)
        ids = None
        if interface is not None or not actor.is_admin:
            query = access.visible_peers(actor)
            if interface is not None:
                query = query.where(Peer.interface_id == self._interface_id(interface, actor))
            with self.store.engine.connect() as conn:
                ids = list(conn.scalars(query))
        totals = self.store.totals("peer", lo, hi, ids)
        ranked = sorted(totals.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:limit]
        names = self._names([pid for pid, _ in ranked])
        items = [
            TopPeer(
                id=pid,
                name=names[pid][0],
                interface=names[pid][1],
                rx_bytes=rx,
                tx_bytes=tx,
                total_bytes=rx + tx,
            )
            for pid, (rx, tx) in ranked
            if pid in names
        ]
        return TopPeers(since=_at(lo), until=_at(hi), items=items)

    def endpoints(self, peer_id: int, limit: int = 20, actor: Actor = SYSTEM) -> list[EndpointSeen]:
        """The endpoints a peer connected from, newest first (kept 35 days)."""
        self._peer(peer_id, actor)
        return [
            EndpointSeen(at=_at(at), endpoint=ep) for at, ep in self.store.endpoints(peer_id, limit)
        ]

    def recent_top(
        self,
        span: int,
        limit: int = 10,
        interface: str | None = None,
        max_age: float = 30.0,
        actor: Actor = SYSTEM,
    ) -> TopPeers:
        """Top peers of the last `span` seconds, reused for `max_age` seconds: the dashboard
        asks on every overview load, and at 10,000 peers a day's top reads ~500k rows.
        Kept per scope: what one reader may see is never served to another."""
        key = (span, limit, interface, access.scope_key(actor))
        hit = self._recent.get(key)
        if hit is not None and time.monotonic() - hit[0] < max_age:
            return hit[1]
        since = datetime.now(UTC) - timedelta(seconds=span)
        top = self.top(since, None, limit, interface, actor)
        self._recent[key] = (time.monotonic(), top)
        return top

    # ---- lookups

    def _peer(self, peer_id: int, actor: Actor) -> None:
        """404 for a peer that is not there or not the actor's to see."""
        with self.store.engine.connect() as conn:
            found = conn.scalar(access.visible_peers(actor).where(Peer.id == peer_id))
        if found is None:
            raise NotFound(f"peer {peer_id} not found")

    def _interface_id(self, name: str, actor: Actor) -> int:
        query = (
            select(Interface.id)
            .join(Node, Interface.node_id == Node.id)
            .where(Node.name == self.node, Interface.name == name)
            .where(access.interface_filter(actor))
        )
        with self.store.engine.connect() as conn:
            found = conn.scalar(query)
        if found is None:
            raise NotFound(f"interface {name!r} not found")
        return found

    def _names(self, ids: list[int]) -> dict[int, tuple[str, str]]:
        query = (
            select(Peer.id, Peer.name, Interface.name)
            .join(Interface, Peer.interface_id == Interface.id)
            .where(Peer.id.in_(ids))
        )
        with self.store.engine.connect() as conn:
            return {pid: (name, iface) for pid, name, iface in conn.execute(query)}


def _range(since: datetime | None, until: datetime | None, now: int) -> tuple[int, int]:
    # By default up to and including the current second (its bucket is the newest).
    hi = epoch(until) if until is not None else now + 1
    lo = epoch(since) if since is not None else hi - int(DEFAULT_RANGE.total_seconds())
    if lo >= hi:
        raise Invalid("since must be before until", "since")
    return lo, hi

"""The traffic time-series store: batched writes, rollups, retention and range reads.

Two kinds of series, `peer` and `interface`, each in four tiers (domain.traffic.TIERS). The
collector upserts deltas into the current minute of the raw tier; `rollup` sums closed
blocks into the next tier up and records how far it got (`traffic_rollups`), so a reader
takes whole blocks from the coarsest tier that holds them and the edges from finer ones
(domain.traffic.cover). Plain portable SQL apart from the upsert, which SQLite and
PostgreSQL both spell `ON CONFLICT ... DO UPDATE`; PostgreSQL gets a pass's rows as arrays
in one statement (store.db.bulk_insert).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    delete,
    func,
    literal_column,
    select,
)

from wirewarden.domain.addresses import host_of
from wirewarden.domain.classify.names import Seen
from wirewarden.domain.classify.steering import app_of
from wirewarden.domain.traffic import TIERS, Counters, Segment, Tier, cover, floor_to, moved
from wirewarden.store.db import Bulk, bulk_insert, retry_on_busy
from wirewarden.store.fleet import revision_of
from wirewarden.store.tables import (
    APP_NAMES,
    INTERFACE_TRAFFIC,
    PEER_APP_TRAFFIC,
    PEER_TRAFFIC,
    AppCounters,
    Interface,
    Node,
    Peer,
    PeerCounters,
    PeerEndpoint,
    TrafficRollup,
)

Kind = Literal["peer", "interface"]
KINDS: tuple[Kind, ...] = ("peer", "interface")
# Every series the tiers hold, with its key and its summed columns: a peer's and an
# interface's traffic (rx, tx), and a peer's classified traffic per class.
Series = Literal["peer", "interface", "app"]
SERIES: tuple[Series, ...] = ("peer", "interface", "app")
TABLES: dict[Series, dict[str, Table]] = {
    "peer": PEER_TRAFFIC,
    "interface": INTERFACE_TRAFFIC,
    "app": PEER_APP_TRAFFIC,
}
SERIES_KEYS: dict[Series, tuple[str, ...]] = {
    "peer": ("peer_id",),
    "interface": ("interface_id",),
    "app": ("peer_id", "app"),
}
KEYS: dict[Kind, str] = {kind: SERIES_KEYS[kind][0] for kind in KINDS}
VALUES: dict[Series, tuple[str, ...]] = {
    "peer": ("rx", "tx"),
    "interface": ("rx", "tx"),
    "app": ("bytes", "packets", "flows"),
}
PARENTS: dict[Kind, str] = {"peer": "peers", "interface": "interfaces"}
ENDPOINT_KEEP = 35 * 86400
COUNTERS = cast(Table, PeerCounters.__table__)
ENDPOINTS = cast(Table, PeerEndpoint.__table__)
ROLLUPS = cast(Table, TrafficRollup.__table__)
# Every per-peer (per-interface) row is written only while its peer (interface) exists,
# checked by the statement itself: one deleted since the pass read the directory loses its
# own row, not the whole sample to a FOREIGN KEY failure. Named binds, each driver's own
# placeholders; rows go to the driver's executemany on SQLite and as arrays through one
# `unnest` statement on PostgreSQL (store.db.bulk_insert).
SAVE_COUNTERS = bulk_insert(
    "peer_counters",
    [
        ("peer_id", "peer_id", "BIGINT"),
        ("public_key", "public_key", "TEXT"),
        ("rx", "rx", "BIGINT"),
        ("tx", "tx", "BIGINT"),
        ("handshake", "handshake", "BIGINT"),
        ("endpoint", "endpoint", "TEXT"),
        ("updated", "updated", "BIGINT"),
    ],
    exists=("peers", "peer_id"),
    tail="ON CONFLICT (peer_id) DO UPDATE SET"
    " public_key = excluded.public_key, rx = excluded.rx, tx = excluded.tx,"
    " handshake = excluded.handshake, endpoint = excluded.endpoint, updated = excluded.updated",
)
SAVE_ENDPOINT = bulk_insert(
    "peer_endpoints",
    [("peer_id", "peer_id", "BIGINT"), ("at", "at", "BIGINT"), ("endpoint", "endpoint", "TEXT")],
    exists=("peers", "peer_id"),
)


def _add_delta(kind: Kind) -> Bulk:
    """Add one period's bytes to the series' row of its minute (made if missing)."""
    name, key = TABLES[kind]["raw"].name, KEYS[kind]
    return bulk_insert(
        name,
        [
            ("id", key, "BIGINT"),
            ("t", "t", "BIGINT"),
            ("rx", "rx", "BIGINT"),
            ("tx", "tx", "BIGINT"),
        ],
        exists=(PARENTS[kind], "id"),
        tail=f"ON CONFLICT ({key}, t) DO UPDATE SET rx = {name}.rx + excluded.rx,"
        f" tx = {name}.tx + excluded.tx",
    )


ADD_DELTA: dict[Kind, Bulk] = {kind: _add_delta(kind) for kind in KINDS}
_APP_RAW = PEER_APP_TRAFFIC["raw"].name
ADD_APP_DELTA = bulk_insert(
    _APP_RAW,
    [
        ("peer_id", "peer_id", "BIGINT"),
        ("app", "app", "TEXT"),
        ("t", "t", "BIGINT"),
        ("bytes", "bytes", "BIGINT"),
        ("packets", "packets", "BIGINT"),
        ("flows", "flows", "BIGINT"),
    ],
    exists=("peers", "peer_id"),
    tail=f"ON CONFLICT (peer_id, app, t) DO UPDATE SET bytes = {_APP_RAW}.bytes + excluded.bytes,"
    f" packets = {_APP_RAW}.packets + excluded.packets,"
    f" flows = {_APP_RAW}.flows + excluded.flows",
)
SAVE_APP_COUNTERS = bulk_insert(
    "app_counters",
    [
        ("address", "address", "TEXT"),
        ("mark", "mark", "BIGINT"),
        ("bytes", "bytes", "BIGINT"),
        ("packets", "packets", "BIGINT"),
        ("flows", "flows", "BIGINT"),
        ("updated", "updated", "BIGINT"),
    ],
    # SQLite reads an upsert's SELECT only with a WHERE (an ON would be a join's).
    tail="WHERE true ON CONFLICT (address, mark) DO UPDATE SET bytes = excluded.bytes,"
    " packets = excluded.packets, flows = excluded.flows, updated = excluded.updated",
)


class PeerRef(NamedTuple):
    id: int
    name: str
    interface_id: int
    interface: str
    public_key: str
    addresses: tuple[str, ...] = ()  # its tunnel addresses, without prefix length


class Delta(NamedTuple):
    """Bytes a series moved in one collection period."""

    id: int
    rx: int
    tx: int


class AppDelta(NamedTuple):
    """A peer's traffic of one class in one collection period."""

    peer_id: int
    app: str
    bytes: int
    packets: int
    flows: int = 0


class NameCount(NamedTuple):
    """Flows of one peer and class that named server `name` (WIREWARDEN_CLASSIFY_NAMES)."""

    peer_id: int
    app: str
    name: str
    flows: int


# Names are kept by the hour: a day of a peer's browsing is a few hundred rows at most.
NAME_STEP = 3600
NAME_KEEP = 7 * 86400
_NAMES = APP_NAMES
ADD_NAMES = bulk_insert(
    "app_names",
    [
        ("peer_id", "peer_id", "BIGINT"),
        ("app", "app", "TEXT"),
        ("name", "name", "TEXT"),
        ("t", "t", "BIGINT"),
        ("flows", "flows", "BIGINT"),
    ],
    exists=("peers", "peer_id"),
    tail="ON CONFLICT (peer_id, app, name, t) DO UPDATE SET flows = app_names.flows"
    " + excluded.flows",
)


def name_counts(seen: dict[Seen, int], owners: dict[str, int]) -> list[NameCount]:
    """Flows per peer (`owners`: address -> peer id; whichever end of a flow is one of
    ours), class and name; a flow between no peer of ours is left out."""
    sums: dict[tuple[int, str, str], int] = {}
    for flow, flows in seen.items():
        pid = owners.get(flow.a, owners.get(flow.b))
        if pid is not None:
            key = (pid, flow.app, flow.name)
            sums[key] = sums.get(key, 0) + flows
    return [NameCount(pid, app, name, flows) for (pid, app, name), flows in sums.items()]


class AppCounter(NamedTuple):
    """The kernel's counters of one peer address and conntrack mark (a class)."""

    address: str
    mark: int
    bytes: int
    packets: int
    flows: int = 0


def app_moves(
    seen: Iterable[AppCounter],
    baseline: dict[tuple[str, int], AppCounter],
    owners: dict[str, int],
) -> tuple[list[AppDelta], list[AppCounter]]:
    """What the kernel's class counters moved since `baseline` (brought up to `seen` in
    place), summed per peer (`owners`: address -> peer id) and class; and the counters that
    changed, to store as the next baseline. A counter new or counting again from zero (its
    set written anew) moved all of it; one of no peer's address or of no class is kept as
    a baseline only."""
    sums: dict[tuple[int, str], tuple[int, ...]] = {}
    changed = []
    for now in seen:
        key = (now.address, now.mark)
        prev = baseline.get(key)
        if prev == now:
            continue
        baseline[key] = now
        changed.append(now)
        step = moved(prev[2:] if prev else None, now[2:])
        peer, app = owners.get(now.address), app_of(now.mark)
        if peer is not None and app is not None and any(step):
            sums[(peer, app)] = _plus(sums.get((peer, app), (0, 0, 0)), step)
    return [AppDelta(p, a, *v) for (p, a), v in sums.items()], changed


def _plus(a: tuple[int, ...], b: Iterable[int | None]) -> tuple[int, ...]:
    return tuple(x + int(y or 0) for x, y in zip(a, b, strict=True))


@dataclass
class Batch:
    """Everything one collection pass writes, in one transaction."""

    t: int
    peers: list[Delta]
    interfaces: list[Delta]
    counters: list[tuple[int, Counters]]
    endpoints: list[tuple[int, str]]
    apps: list[AppDelta] = field(default_factory=list)
    app_counters: list[AppCounter] = field(default_factory=list)
    names: list[NameCount] = field(default_factory=list)


class TrafficStore:
    def __init__(self, engine: Engine, names_keep: int = NAME_KEEP) -> None:
        # How long server names are kept (seconds): the DNS query log's retention.
        self.engine, self.names_keep = engine, names_keep

    # ---- what the collector needs

    def revision(self, node: str) -> int:
        with self.engine.connect() as conn:
            return revision_of(conn, node)

    def directory(self, node: str) -> list[PeerRef]:
        """Every peer of this node, in one query."""
        query = (
            select(
                Peer.id,
                Peer.name,
                Peer.public_key,
                Interface.id,
                Interface.name,
                Peer.ipv4,
                Peer.ipv6,
            )
            .join(Interface, Peer.interface_id == Interface.id)
            .join(Node, Interface.node_id == Node.id)
            .where(Node.name == node)
        )
        with self.engine.connect() as conn:
            return [
                PeerRef(pid, name, iid, ifname, key, _hosts(v4, v6))
                for pid, name, key, iid, ifname, v4, v6 in conn.execute(query)
            ]

    def load_counters(self) -> dict[int, Counters]:
        table = COUNTERS
        with self.engine.connect() as conn:
            rows = conn.execute(select(table))
            return {
                r.peer_id: Counters(r.public_key, r.rx, r.tx, r.handshake, r.endpoint) for r in rows
            }

    @retry_on_busy
    def record(self, batch: Batch) -> None:
        with self.engine.begin() as conn:
            minute = floor_to(batch.t, TIERS[0].step)
            for kind, deltas in (("peer", batch.peers), ("interface", batch.interfaces)):
                if deltas:
                    self._add(conn, kind, minute, deltas)  # type: ignore[arg-type]
            if batch.counters:
                self._save_counters(conn, batch.t, batch.counters)
            if batch.endpoints:
                t = batch.t
                rows = [{"peer_id": p, "at": t, "endpoint": e} for p, e in batch.endpoints]
                SAVE_ENDPOINT.execute(conn, rows)
            if batch.apps:
                ADD_APP_DELTA.execute(conn, [{**d._asdict(), "t": minute} for d in batch.apps])
            if batch.app_counters:
                t = batch.t
                rows = [{**c._asdict(), "updated": t} for c in batch.app_counters]
                SAVE_APP_COUNTERS.execute(conn, rows)
            if batch.names:
                hour = floor_to(batch.t, NAME_STEP)
                ADD_NAMES.execute(conn, [{**n._asdict(), "t": hour} for n in batch.names])

    def load_app_counters(self) -> dict[tuple[str, int], AppCounter]:
        table = cast(Table, AppCounters.__table__)
        columns = [table.c[name] for name in AppCounter._fields]
        with self.engine.connect() as conn:
            rows = conn.execute(select(*columns))
            return {(r[0], r[1]): AppCounter(*r) for r in rows}

    def _add(self, conn: Connection, kind: Kind, t: int, deltas: list[Delta]) -> None:
        ADD_DELTA[kind].execute(
            conn, [{"id": d.id, "t": t, "rx": d.rx, "tx": d.tx} for d in deltas]
        )

    def _save_counters(
        self, conn: Connection, t: int, counters: list[tuple[int, Counters]]
    ) -> None:
        rows = [
            {
                "peer_id": pid,
                "public_key": c.public_key,
                "rx": c.rx,
                "tx": c.tx,
                "handshake": c.handshake,
                "endpoint": c.endpoint,
                "updated": t,
            }
            for pid, c in counters
        ]
        SAVE_COUNTERS.execute(conn, rows)

    # ---- rollups and retention

    def watermarks(self, kind: Series, conn: Connection | None = None) -> dict[str, int]:
        if conn is None:
            with self.engine.connect() as own:
                return self.watermarks(kind, own)
        rows = conn.execute(select(TrafficRollup.name, TrafficRollup.until))
        prefix = f"{kind}:"
        return {n.removeprefix(prefix): u for n, u in rows if n.startswith(prefix)}

    def rollup(self, now: int) -> int:
        """Sum every closed block into the next tier up; returns the rows written. Call it
        from the thread that records, after recording: every later delta then falls after
        the blocks it closes."""
        written = 0
        with self.engine.begin() as conn:
            for kind in SERIES:
                marks = self.watermarks(kind, conn)
                for finer, coarser in itertools.pairwise(TIERS):
                    written += self._roll(conn, kind, finer, coarser, marks, now)
        return written

    def _roll(
        self,
        conn: Connection,
        kind: Series,
        finer: Tier,
        coarser: Tier,
        marks: dict[str, int],
        now: int,
    ) -> int:
        start, end = marks.get(coarser.name, 0), floor_to(now, coarser.step)
        if end <= start:
            return 0
        src, dst = TABLES[kind][finer.name], TABLES[kind][coarser.name]
        keys, values = [src.c[k] for k in SERIES_KEYS[kind]], VALUES[kind]
        block = _bucket(src, coarser.step)
        sums = (
            select(*keys, block, *(func.sum(src.c[v]) for v in values))
            .where(src.c.t >= start, src.c.t < end)
            .group_by(*keys, block)
        )
        columns = [*SERIES_KEYS[kind], "t", *values]
        result = conn.execute(dst.insert().from_select(columns, sums))
        name = f"{kind}:{coarser.name}"
        if coarser.name in marks:
            conn.execute(ROLLUPS.update().where(TrafficRollup.name == name).values(until=end))
        else:
            conn.execute(ROLLUPS.insert().values(name=name, until=end))
        marks[coarser.name] = end
        return max(result.rowcount, 0)

    def retain(self, now: int) -> dict[str, int]:
        """Delete what each tier no longer keeps, never a block not yet rolled up."""
        deleted: dict[str, int] = {}
        with self.engine.begin() as conn:
            for kind in SERIES:
                marks = self.watermarks(kind, conn)
                for tier, coarser in itertools.pairwise(TIERS):
                    if tier.keep is None:
                        continue
                    cutoff = min(now - tier.keep, marks.get(coarser.name, 0))
                    table = TABLES[kind][tier.name]
                    result = conn.execute(delete(table).where(table.c.t < cutoff))
                    deleted[f"{kind}:{tier.name}"] = max(result.rowcount, 0)
            endpoints = ENDPOINTS
            result = conn.execute(delete(endpoints).where(endpoints.c.at < now - ENDPOINT_KEEP))
            deleted["endpoints"] = max(result.rowcount, 0)
            # An hour is kept until all of it is older than the retention.
            cutoff = now - self.names_keep - NAME_STEP
            result = conn.execute(delete(_NAMES).where(_NAMES.c.t < cutoff))
            deleted["names"] = max(result.rowcount, 0)
        return deleted

    def top_names(self, peer_id: int, since: int, limit: int = 20) -> list[NameCount]:
        """The names of the peer's flows since `since` (by the hour), most flows first."""
        flows = func.sum(_NAMES.c.flows).label("flows")
        query = (
            select(_NAMES.c.app, _NAMES.c.name, flows)
            .where(_NAMES.c.peer_id == peer_id, _NAMES.c.t >= floor_to(since, NAME_STEP))
            .group_by(_NAMES.c.app, _NAMES.c.name)
            .order_by(flows.desc(), _NAMES.c.name)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [NameCount(peer_id, a, n, int(f)) for a, n, f in conn.execute(query)]

    # ---- reading

    def series(
        self,
        kind: Kind,
        ids: Sequence[int],
        since: int,
        until: int,
        step: int,
        tiers: tuple[Tier, ...],
    ) -> dict[int, tuple[int, int]]:
        """Bytes per bucket of `step` (bucket start -> (rx, tx)) of the summed series."""
        out: dict[int, tuple[int, int]] = {}
        key = KEYS[kind]
        with self.engine.connect() as conn:
            for seg in cover(since, until, self.watermarks(kind, conn), tiers):
                table = TABLES[kind][seg.tier.name]
                block = _bucket(table, step)
                query = (
                    select(block, func.sum(table.c.rx), func.sum(table.c.tx))
                    .where(*_range(table, seg), table.c[key].in_(ids))
                    .group_by(block)
                )
                _merge(out, conn.execute(query).all())
        return out

    def totals(
        self, kind: Kind, since: int, until: int, ids: Iterable[int] | None = None
    ) -> dict[int, tuple[int, int]]:
        """Bytes per series over [since, until) (both aligned to the minute)."""
        out: dict[int, tuple[int, int]] = {}
        key = KEYS[kind]
        wanted = None if ids is None else list(ids)
        with self.engine.connect() as conn:
            for seg in cover(since, until, self.watermarks(kind, conn)):
                table = TABLES[kind][seg.tier.name]
                query = select(table.c[key], func.sum(table.c.rx), func.sum(table.c.tx)).where(
                    *_range(table, seg)
                )
                if wanted is not None:
                    query = query.where(table.c[key].in_(wanted))
                _merge(out, conn.execute(query.group_by(table.c[key])).all())
        return out

    def app_totals(self, peer_id: int, since: int, until: int) -> dict[str, tuple[int, int, int]]:
        """A peer's classified traffic per class over [since, until): (bytes, packets,
        flows)."""
        out: dict[str, tuple[int, ...]] = {}
        with self.engine.connect() as conn:
            for seg in cover(since, until, self.watermarks("app", conn)):
                table = TABLES["app"][seg.tier.name]
                sums = (func.sum(table.c[v]) for v in VALUES["app"])
                query = (
                    select(table.c.app, *sums)
                    .where(*_range(table, seg), table.c.peer_id == peer_id)
                    .group_by(table.c.app)
                )
                for app, *values in conn.execute(query):
                    out[app] = _plus(out.get(app, (0, 0, 0)), values)
        return {app: (v[0], v[1], v[2]) for app, v in out.items()}

    def endpoints(self, peer_id: int, limit: int = 20) -> list[tuple[int, str]]:
        table = ENDPOINTS
        query = (
            select(table.c.at, table.c.endpoint)
            .where(table.c.peer_id == peer_id)
            .order_by(table.c.at.desc(), table.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(at, ep) for at, ep in conn.execute(query)]

    def counters(self, peer_id: int) -> Counters | None:
        return self.load_counters_of([peer_id]).get(peer_id)

    def load_counters_of(self, ids: Sequence[int]) -> dict[int, Counters]:
        table = COUNTERS
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).where(table.c.peer_id.in_(ids)))
            return {
                r.peer_id: Counters(r.public_key, r.rx, r.tx, r.handshake, r.endpoint) for r in rows
            }


def _hosts(*addresses: str | None) -> tuple[str, ...]:
    return tuple(host_of(a) for a in addresses if a)


def _bucket(table: Table, step: int) -> Any:
    # `t - t % step` floors a positive integer the same way on SQLite and PostgreSQL; the
    # step is a literal so PostgreSQL sees the grouped and selected expressions as one.
    return (table.c.t - table.c.t % literal_column(str(int(step)))).label("bucket")


def _range(table: Table, seg: Segment) -> tuple[Any, Any]:
    return table.c.t >= seg.lo, table.c.t < seg.hi


def _merge(out: dict[int, tuple[int, int]], rows: Iterable[Any]) -> None:
    for key, rx, tx in rows:
        old_rx, old_tx = out.get(key, (0, 0))
        out[key] = (old_rx + int(rx or 0), old_tx + int(tx or 0))

"""The time-series store and the collector over a real database (SQLite, then PostgreSQL):
batched writes, rollup arithmetic, retention, restarts, counter resets."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from wirewarden.dataplane.stats import DumpCache
from wirewarden.domain.state import DeviceDump, PeerStats
from wirewarden.domain.traffic import DAY, HOUR, TIERS, Counters, tiers_for_step
from wirewarden.metrics.collector import Collector
from wirewarden.store import schema
from wirewarden.store.db import make_engine
from wirewarden.store.tables import PEER_APP_TRAFFIC, PEER_TRAFFIC, Interface, Node, Peer, Tenant
from wirewarden.store.tsdb import AppDelta, Batch, Delta, TrafficStore

T0 = 1_800_000_000 - 1_800_000_000 % DAY  # a midnight, UTC
KEYS = ["a" * 43 + "=", "b" * 43 + "=", "c" * 43 + "="]


@pytest.fixture
def engine(tmp_path: Path, database_url: str | None) -> Iterator[Engine]:
    # database_url: SQLite, then PostgreSQL (tests/conftest.py); both come migrated.
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'data' / 'wirewarden.db'}")
    schema.upgrade(engine)
    with Session(engine) as db, db.begin():
        db.add(Node(id=1, name="local", revision=1))
        db.add(Tenant(id=1, name="default"))
        db.flush()
        db.add(
            Interface(
                id=1,
                tenant_id=1,
                node_id=1,
                name="wg0",
                ipv4="10.8.0.1/24",
                ipv6=None,
                listen_port=51820,
                private_key_enc=b"x",
                public_key="p",
                endpoint=None,
            )
        )
        db.flush()
        for i, key in enumerate(KEYS, start=1):
            db.add(
                Peer(
                    id=i,
                    interface_id=1,
                    name=f"p{i}",
                    host_index=i + 1,
                    ipv4=f"10.8.0.{i + 1}",
                    ipv6=None,
                    public_key=key,
                    allowed_ips="0.0.0.0/0",
                )
            )
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> TrafficStore:
    return TrafficStore(engine)


class Kernel:
    """What `wg show all dump` would say, and when it was taken."""

    def __init__(self) -> None:
        self.t = float(T0)
        self.peers: dict[str, PeerStats] = {}
        self.up = True

    def set(self, key: str, rx: int, tx: int, handshake: int | None = None) -> None:
        hs = int(self.t) if handshake is None else handshake
        self.peers[key] = PeerStats("198.51.100.7:4000", hs, rx, tx)

    def add(self, key: str, rx: int, tx: int) -> None:
        old = self.peers.get(key, PeerStats(None, 0, 0, 0))
        self.set(key, old.rx_bytes + rx, old.tx_bytes + tx)

    def __call__(self) -> tuple[dict[str, DeviceDump], float]:
        if not self.up:
            return {}, self.t
        return {"wg0": DeviceDump("k", 51820, {}, dict(self.peers))}, self.t


def write(store: TrafficStore, t: int, peer: int, rx: int, tx: int) -> None:
    store.record(Batch(t, [Delta(peer, rx, tx)], [Delta(1, rx, tx)], [], []))


def rows(engine: Engine, tier: str) -> list[tuple[int, int, int, int]]:
    table = PEER_TRAFFIC[tier]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(table.c.peer_id, table.c.t))]  # type: ignore[misc]


def test_deltas_of_one_minute_add_up_in_one_raw_row(store: TrafficStore, engine: Engine) -> None:
    for s in (0, 10, 20, 59):
        write(store, T0 + s, 1, 100, 1)
    write(store, T0 + 60, 1, 5, 5)
    assert rows(engine, "raw") == [(1, T0, 400, 4), (1, T0 + 60, 5, 5)]


def test_a_pass_naming_a_peer_deleted_since_writes_everyone_else(
    store: TrafficStore, engine: Engine
) -> None:
    # One statement for the whole pass on PostgreSQL: the gone peer must cost its own rows
    # only, not the batch (no FOREIGN KEY failure), on both databases.
    counters = [(pid, Counters(KEYS[pid - 1], 10, 20, T0, None)) for pid in (1, 2)]
    counters.append((99, Counters("z" * 43 + "=", 1, 1, T0, None)))
    store.record(
        Batch(
            T0,
            [Delta(1, 100, 1), Delta(99, 5, 5), Delta(2, 7, 7)],
            [Delta(1, 107, 8)],
            counters,
            [(1, "198.51.100.7:4000"), (99, "192.0.2.9:1")],
        )
    )
    assert rows(engine, "raw") == [(1, T0, 100, 1), (2, T0, 7, 7)]
    assert sorted(store.load_counters()) == [1, 2]
    store.record(Batch(T0 + 10, [Delta(1, 1, 1), Delta(2, 1, 1)], [], [], []))
    assert rows(engine, "raw") == [(1, T0, 101, 2), (2, T0, 8, 8)]


def test_rollup_sums_closed_blocks_only(store: TrafficStore, engine: Engine) -> None:
    # one row a minute for 2 h 3 min, minute i moving i bytes down and 1 up
    for i in range(123):
        write(store, T0 + 60 * i, 1, i, 1)
    store.rollup(T0 + 123 * 60)
    five = rows(engine, "5m")
    assert len(five) == 24  # 24 closed blocks; the block from 2:00 is still open
    assert five[0] == (1, T0, 0 + 1 + 2 + 3 + 4, 5)
    assert five[23] == (1, T0 + 23 * 300, sum(range(115, 120)), 5)
    assert rows(engine, "1h") == [
        (1, T0, sum(range(60)), 60),
        (1, T0 + HOUR, sum(range(60, 120)), 60),
    ]
    assert rows(engine, "1d") == []
    # a second rollup at the same time writes nothing twice
    assert store.rollup(T0 + 123 * 60) == 0
    # the totals are the same from any tier mix
    total = store.totals("peer", T0, T0 + 123 * 60)
    assert total == {1: (sum(range(123)), 123)}
    assert store.totals("interface", T0, T0 + 123 * 60) == {1: (sum(range(123)), 123)}


def test_series_buckets_mix_tiers_exactly(store: TrafficStore) -> None:
    for i in range(0, 3 * 24 * 60, 7):  # every 7 minutes for 3 days
        write(store, T0 + 60 * i, 2, 1000, 10)
    now = T0 + 3 * DAY
    store.rollup(now)
    for step in (300, 900, HOUR, DAY):
        points = store.series("peer", [2], T0, now, step, tiers_for_step(step))
        assert sum(rx for rx, _ in points.values()) == 1000 * len(range(0, 3 * 24 * 60, 7))
        assert all(t % step == 0 for t in points)
    daily = store.series("peer", [2], T0, now, DAY, tiers_for_step(DAY))
    assert sorted(daily) == [T0, T0 + DAY, T0 + 2 * DAY]


def test_retention_keeps_each_tier_for_its_time_and_never_drops_unrolled_rows(
    store: TrafficStore, engine: Engine
) -> None:
    write(store, T0, 1, 7, 7)
    # 40 days later without any rollup: nothing may go, it is not rolled up yet
    later = T0 + 40 * DAY
    store.retain(later)
    assert rows(engine, "raw") == [(1, T0, 7, 7)]
    store.rollup(later)
    store.retain(later)
    assert rows(engine, "raw") == []
    assert rows(engine, "5m") == []  # older than 35 days
    assert rows(engine, "1h") == [(1, T0, 7, 7)]
    assert rows(engine, "1d") == [(1, T0, 7, 7)]
    store.retain(T0 + 400 * DAY)
    store.rollup(T0 + 400 * DAY)
    store.retain(T0 + 400 * DAY)
    assert rows(engine, "1h") == []
    assert rows(engine, "1d") == [(1, T0, 7, 7)]  # daily totals are kept forever
    assert store.totals("peer", T0, T0 + 400 * DAY) == {1: (7, 7)}


def test_a_deleted_peer_takes_its_history_with_it(store: TrafficStore, engine: Engine) -> None:
    write(store, T0, 3, 5, 5)
    store.rollup(T0 + DAY)
    with engine.begin() as conn:
        conn.execute(delete(Peer).where(Peer.id == 3))
    for tier in ("raw", "5m", "1h", "1d"):
        assert rows(engine, tier) == []


# ---- the collector


def collector(store: TrafficStore, kernel: Kernel) -> Collector:
    return Collector(kernel, store, "local", period=10)


def tick(kernel: Kernel, c: Collector, seconds: float = 10) -> None:
    kernel.t += seconds
    c.collect()


def test_collector_counts_each_byte_once_across_resets_and_restarts(
    store: TrafficStore, engine: Engine
) -> None:
    kernel = Kernel()
    c = collector(store, kernel)
    kernel.set(KEYS[0], 1000, 2000)
    tick(kernel, c)
    kernel.add(KEYS[0], 500, 500)
    tick(kernel, c)
    assert store.totals("peer", T0, T0 + HOUR) == {1: (1500, 2500)}
    # wireguard-go killed: the interface vanishes from the dump, then comes back at zero
    kernel.up = False
    tick(kernel, c)
    kernel.up = True
    kernel.peers = {}
    kernel.set(KEYS[0], 0, 0, handshake=0)
    tick(kernel, c)
    kernel.add(KEYS[0], 300, 30)
    tick(kernel, c)
    assert store.totals("peer", T0, T0 + HOUR) == {1: (1800, 2530)}
    # a restart within a period, never seen without the peer: counters just went down
    kernel.peers = {}
    kernel.set(KEYS[0], 10, 20)
    tick(kernel, c)
    assert store.totals("peer", T0, T0 + HOUR) == {1: (1810, 2550)}
    # serve restarts: a new collector resumes from the stored counters, nothing doubled
    c2 = collector(store, kernel)
    kernel.add(KEYS[0], 1, 2)
    tick(kernel, c2)
    assert store.totals("peer", T0, T0 + HOUR) == {1: (1811, 2552)}
    assert store.totals("interface", T0, T0 + HOUR) == {1: (1811, 2552)}


def test_collector_skips_a_dump_it_has_seen(store: TrafficStore) -> None:
    kernel = Kernel()
    c = collector(store, kernel)
    kernel.set(KEYS[0], 100, 100)
    tick(kernel, c)
    c.collect()  # same dump (same time): nothing counted twice
    assert store.totals("peer", T0, T0 + HOUR) == {1: (100, 100)}


def test_a_collector_beside_the_reconcile_pass_takes_no_dump_of_its_own(
    store: TrafficStore,
) -> None:
    own: list[float] = []

    def dump() -> dict[str, DeviceDump]:
        own.append(time.time())
        return {}

    cache = DumpCache(dump, max_age=0.2)
    collector = Collector(cache.timed, store, "local", period=0.5, fresh=cache.wait_fresh)
    stop = threading.Event()

    def reconcile_passes() -> None:  # a dump every period and a bit (the pass's own time)
        while not stop.wait(0.52):
            cache.offer({}, time.monotonic(), time.time())

    passes = threading.Thread(target=reconcile_passes)
    passes.start()
    collector.start()
    try:
        time.sleep(4)
    finally:
        collector.stop()
        stop.set()
        passes.join()
    assert collector.stats.passes >= 6 and collector.stats.errors == 0
    # The first collection's, before any pass offered one; at most one more while the
    # collector found the passes' rhythm (without waiting for them: 8 of its own).
    assert len(own) <= 2


def test_collector_writes_no_row_for_idle_peers_and_ignores_unknown_keys(
    store: TrafficStore, engine: Engine
) -> None:
    kernel = Kernel()
    c = collector(store, kernel)
    for key in KEYS:
        kernel.set(key, 0, 0, handshake=0)
    kernel.set("z" * 43 + "=", 999, 999)  # a zombie peer: not ours
    tick(kernel, c)
    kernel.add(KEYS[1], 10, 20)
    tick(kernel, c)
    assert rows(engine, "raw") == [(2, T0 + 20 - 20 % 60, 10, 20)]


def test_snapshot_has_rates_online_and_endpoint_changes(store: TrafficStore) -> None:
    kernel = Kernel()
    c = collector(store, kernel)
    kernel.set(KEYS[0], 0, 0)
    kernel.set(KEYS[1], 0, 0, handshake=0)
    tick(kernel, c)
    kernel.add(KEYS[0], 1000, 5000)
    tick(kernel, c)
    snap = c.snapshot
    assert snap.peers[1].rx_rate == pytest.approx(100)
    assert snap.peers[1].tx_rate == pytest.approx(500)
    assert snap.interfaces["wg0"].peers == 3
    assert snap.interfaces["wg0"].online == 1
    assert snap.interfaces["wg0"].tx_rate == pytest.approx(500)
    kernel.peers[KEYS[0]] = PeerStats("192.0.2.55:7000", int(kernel.t), 1000, 5000)
    tick(kernel, c)
    assert [ep for _, ep in store.endpoints(1)] == ["192.0.2.55:7000", "198.51.100.7:4000"]


def test_rollup_via_collector_over_a_day_matches_the_raw_sum(store: TrafficStore) -> None:
    kernel = Kernel()
    c = collector(store, kernel)
    moved = 0
    for i in range(26 * 12):  # 26 hours, one look every 5 minutes
        kernel.add(KEYS[2], 1000 + i, 1)
        moved += 1000 + i
        tick(kernel, c, 300)
    marks = store.watermarks("peer")
    assert marks["1d"] == T0 + DAY
    assert store.totals("peer", T0, T0 + 2 * DAY) == {3: (moved, 26 * 12)}
    with store.engine.connect() as conn:
        counts = {
            tier: conn.scalar(select(func.count()).select_from(PEER_TRAFFIC[tier]))
            for tier in ("raw", "5m", "1h", "1d")
        }
    assert counts["1d"] == 1
    assert counts["1h"] == 26
    assert [t.name for t in TIERS] == ["raw", "5m", "1h", "1d"]


def test_classified_traffic_rolls_up_and_retains_like_traffic(
    store: TrafficStore, engine: Engine
) -> None:
    # every 7 minutes for 3 days: 100 bytes of tls and 1 packet; ssh once
    times = range(0, 3 * 24 * 60, 7)
    for i in times:
        store.record(Batch(T0 + 60 * i, [], [], [], [], apps=[AppDelta(1, "tls", 100, 1, 1)]))
    store.record(Batch(T0 + 90, [], [], [], [], apps=[AppDelta(1, "ssh", 5, 2, 1)]))
    now = T0 + 3 * DAY
    store.rollup(now)
    every = {"tls": (100 * len(times), len(times), len(times)), "ssh": (5, 2, 1)}
    assert store.app_totals(1, T0, now) == every
    with engine.connect() as conn:
        daily = conn.execute(select(func.count()).select_from(PEER_APP_TRAFFIC["1d"])).scalar()
    assert daily == 4  # tls on three days, ssh on the first
    # A window inside: whole hours from the coarse tier, the edges from finer ones.
    window = store.app_totals(1, T0 + HOUR + 420, T0 + 2 * HOUR)
    assert window == {"tls": (100 * 8, 8, 8)}
    store.retain(T0 + 400 * DAY)
    assert store.app_totals(1, T0, now) == every  # the daily tier keeps them
    assert store.app_totals(2, T0, now) == {}


def test_collector_stores_each_classified_byte_once_across_kernel_resets(
    store: TrafficStore,
) -> None:
    from wirewarden.domain.classify.steering import mark_of
    from wirewarden.domain.firewall import AppCount, KernelCounts

    seen = [KernelCounts()]
    clock = [float(T0)]

    def dump() -> tuple[dict[str, DeviceDump], float]:
        clock[0] += 60
        return {}, clock[0]

    def collector() -> Collector:
        return Collector(dump, store, "local", 60, lambda: seen[0])

    first = collector()
    seen[0] = KernelCounts(apps=(AppCount("10.8.0.2", mark_of("quic"), 4, 400),))
    first.collect()
    seen[0] = KernelCounts(apps=(AppCount("10.8.0.2", mark_of("quic"), 6, 700),))
    first.collect()
    # A restart: the baseline comes from the database, not from zero.
    again = collector()
    again.collect()
    seen[0] = KernelCounts(apps=(AppCount("10.8.0.2", mark_of("quic"), 1, 50),))  # reset
    again.collect()
    assert store.app_totals(1, T0, int(clock[0]) + 60) == {"quic": (750, 7, 0)}
    assert again.snapshot.apps == {(1, "quic"): (50, 1, 0)}

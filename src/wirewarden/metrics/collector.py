"""The traffic collector: one `wg show all dump` per period, deltas, one batched write.

Per pass: one dump of every interface (through the shared DumpCache), one query for the
node's revision (the peer directory is re-read only when it changed), the per-peer delta
arithmetic in memory, and one transaction of batched upserts for the peers that moved
bytes. Idle peers cost no row. Rollups run after the write in the same thread; retention
every RETAIN_EVERY seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy.exc import IntegrityError

from wirewarden.dataplane.stats import align_window
from wirewarden.domain.classify.names import Seen
from wirewarden.domain.classify.steering import app_of
from wirewarden.domain.firewall import KernelCounts
from wirewarden.domain.state import DeviceDump
from wirewarden.domain.traffic import ONLINE_SECONDS, Counters, delta
from wirewarden.store.tsdb import (
    AppCounter,
    Batch,
    Delta,
    NameCount,
    PeerRef,
    TrafficStore,
    app_moves,
    name_counts,
)

log = logging.getLogger(__name__)
DumpSource = Callable[[], tuple[dict[str, DeviceDump], float]]
CountsSource = Callable[[], KernelCounts]
NamesSource = Callable[[], dict[Seen, int]]
FreshSource = Callable[[float, float], bool]
RETAIN_EVERY = 600.0
# How often a pass waiting for a dump looks whether serve is stopping.
STOP_POLL = 0.5


class PeerSample(NamedTuple):
    """A peer as the last pass saw it: kernel counters and rates over the last period."""

    id: int
    name: str
    interface: str
    public_key: str
    rx: int
    tx: int
    handshake: int
    endpoint: str | None
    rx_rate: float
    tx_rate: float


@dataclass(frozen=True, slots=True)
class InterfaceSample:
    name: str
    peers: int
    online: int
    rx_rate: float
    tx_rate: float


class Directory:
    """Our peers by interface name and public key, and what a pass derives from them; built
    once per node revision."""

    def __init__(self, refs: Iterable[PeerRef] = ()) -> None:
        self.by_key: dict[str, dict[str, PeerRef]] = {}
        self.interface_ids: dict[str, int] = {}
        for ref in refs:
            self.by_key.setdefault(ref.interface, {})[ref.public_key] = ref
            self.interface_ids[ref.interface] = ref.interface_id
        self.ids = {ref.id for refs in self.by_key.values() for ref in refs.values()}
        self.counts = {name: len(refs) for name, refs in self.by_key.items()}
        self.by_id = {ref.id: ref for refs in self.by_key.values() for ref in refs.values()}
        self.by_address = {a: ref for ref in self.by_id.values() for a in ref.addresses}
        # Peer id by address: whom a classified flow's counters and names belong to.
        self.owners = {a: ref.id for a, ref in self.by_address.items()}


class Snapshot:
    """What the last pass saw. Per-peer samples are built when asked for (a scrape, a page),
    not on every pass: the pass keeps the dump, the directory and the rates of the peers
    that moved."""

    def __init__(
        self,
        at: float,
        dumps: dict[str, DeviceDump] | None = None,
        directory: Directory | None = None,
        rates: dict[int, tuple[float, float]] | None = None,
        interfaces: dict[str, InterfaceSample] | None = None,
    ) -> None:
        self.at = at
        self.dumps = dumps or {}
        self.directory = directory or Directory()
        self.rates = rates or {}
        self.interfaces = interfaces or {}
        # Classified traffic as the kernel counts it: (peer id, class) -> (bytes, packets,
        # flows).
        self.apps: dict[tuple[int, str], tuple[int, int, int]] = {}
        self._peers: dict[int, PeerSample] | None = None

    @property
    def peers(self) -> dict[int, PeerSample]:
        if self._peers is None:
            self._peers = dict(self._samples())
        return self._peers

    def _samples(self) -> Iterator[tuple[int, PeerSample]]:
        still = (0.0, 0.0)
        for ifname, device in self.dumps.items():
            ours = self.directory.by_key.get(ifname, {})
            for key, cur in device.stats.items():
                ref = ours.get(key)
                if ref is not None:
                    yield (
                        ref.id,
                        PeerSample(
                            ref.id,
                            ref.name,
                            ifname,
                            key,
                            cur.rx_bytes,
                            cur.tx_bytes,
                            cur.latest_handshake,
                            cur.endpoint,
                            *self.rates.get(ref.id, still),
                        ),
                    )


@dataclass
class CollectorStats:
    passes: int = 0
    errors: int = 0
    last_duration: float = 0.0
    last_cpu: float = 0.0
    last_error: str | None = None


class Collector:
    def __init__(
        self,
        dump: DumpSource,
        store: TrafficStore,
        node: str,
        period: float,
        counts: CountsSource | None = None,
        names: NamesSource | None = None,
        fresh: FreshSource | None = None,
    ) -> None:
        self.dump, self.store, self.node, self.period = dump, store, node, period
        # Waits for a dump someone else took (DumpCache.wait_fresh); None: none is offered.
        self.fresh = fresh
        # The kernel's classified-traffic counters (None: this process reads none).
        self.counts = counts
        # The server names classified flows carried since the last pass (None: not kept).
        self.names = names
        self._app_counters: dict[tuple[str, int], AppCounter] | None = None
        self.snapshot = Snapshot(0.0)
        self.stats = CollectorStats()
        self._counters: dict[int, Counters] | None = None
        self._directory = Directory()
        self._revision = -1
        self._taken = 0.0
        self._retained = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- one pass

    def collect(self) -> Snapshot:
        """Take one pass now (a dump already processed is not counted twice)."""
        with self._lock:
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                self._pass()
            except Exception as exc:
                self.stats.errors += 1
                self.stats.last_error = str(exc)
                raise
            finally:
                self.stats.passes += 1
                self.stats.last_duration = time.perf_counter() - started
                self.stats.last_cpu = time.thread_time() - cpu
            return self.snapshot

    def _pass(self) -> None:
        dumps, taken = self.dump()
        if taken == self._taken:
            return
        self._refresh_directory()
        if self._counters is None:
            self._counters = self.store.load_counters()
        batch, snapshot, following = self._deltas(dumps, taken)
        following_apps = self._app_deltas(batch, snapshot)
        batch.names = self._names()
        try:
            self.store.record(batch)
        except IntegrityError:
            # A peer was deleted between reading the directory and writing: drop its rows.
            self._revision = -1
            self._refresh_directory()
            known = self._directory.ids
            batch.peers = [d for d in batch.peers if d.id in known]
            batch.counters = [c for c in batch.counters if c[0] in known]
            batch.endpoints = [e for e in batch.endpoints if e[0] in known]
            batch.apps = [a for a in batch.apps if a.peer_id in known]
            batch.names = [n for n in batch.names if n.peer_id in known]
            self.store.record(batch)
        self._counters = following
        if following_apps is not None:
            self._app_counters = following_apps
        self.snapshot = snapshot
        self._taken = taken
        now = int(taken)
        self.store.rollup(now)
        if taken - self._retained >= RETAIN_EVERY:
            self.store.retain(now)
            self._retained = taken

    def _refresh_directory(self) -> None:
        revision = self.store.revision(self.node)
        if revision != self._revision:
            self._directory = Directory(self.store.directory(self.node))
            self._revision = revision

    def _deltas(
        self, dumps: dict[str, DeviceDump], taken: float
    ) -> tuple[Batch, Snapshot, dict[int, Counters]]:
        assert self._counters is not None
        prev_all = self._counters
        elapsed = taken - self._taken if self._taken else 0.0
        peers: list[Delta] = []
        changed: list[tuple[int, Counters]] = []
        endpoints: list[tuple[int, str]] = []
        rates: dict[int, tuple[float, float]] = {}
        following: dict[int, Counters] = {}
        # per interface: [rx, tx, online]
        per_iface: dict[str, list[int]] = {}
        directory = self._directory
        online_after = taken - ONLINE_SECONDS
        # The hot loop of a pass (10,000 peers): plain tuples, no calls it can do without.
        for ifname, device in dumps.items():
            sums = per_iface.setdefault(ifname, [0, 0, 0])
            ours = directory.by_key.get(ifname)
            if ours is None:
                continue
            for key, cur in device.stats.items():
                ref = ours.get(key)
                if ref is None:
                    continue  # not ours (a zombie the reconciler is about to remove)
                pid = ref.id
                prev = prev_all.get(pid)
                handshake = cur.latest_handshake
                if handshake > online_after:
                    sums[2] += 1
                if (
                    prev is not None
                    and prev.rx == cur.rx_bytes
                    and prev.tx == cur.tx_bytes
                    and prev.handshake == handshake
                    and prev.endpoint == cur.endpoint
                    and prev.public_key == key
                ):
                    following[pid] = prev  # idle since the last pass: nothing to write
                    continue
                now = Counters(key, cur.rx_bytes, cur.tx_bytes, handshake, cur.endpoint)
                following[pid] = now
                rx, tx = delta(prev, cur, key)
                changed.append((pid, now))
                if rx or tx:
                    peers.append(Delta(pid, rx, tx))
                    sums[0] += rx
                    sums[1] += tx
                    if elapsed > 0 and prev is not None:
                        rates[pid] = (rx / elapsed, tx / elapsed)
                if cur.endpoint and (prev is None or prev.endpoint != cur.endpoint):
                    endpoints.append((pid, cur.endpoint))
        self._forget_missing(prev_all, following, changed)
        ids = directory.interface_ids
        interfaces = [
            Delta(ids[name], rx, tx)
            for name, (rx, tx, _) in per_iface.items()
            if (rx or tx) and name in ids
        ]
        batch = Batch(int(taken), peers, interfaces, changed, endpoints)
        return batch, self._snapshot(taken, dumps, rates, per_iface, elapsed), following

    def _app_deltas(
        self, batch: Batch, snapshot: Snapshot
    ) -> dict[tuple[str, int], AppCounter] | None:
        """This period's classified traffic per peer and class into `batch`, its running
        totals into `snapshot`; the baselines of the next pass (None: nothing read)."""
        if self.counts is None:
            return None
        try:
            seen = [
                AppCounter(c.address, c.mark, c.bytes, c.packets, c.flows)
                for c in self.counts().apps
            ]
        except Exception:  # no table yet, nft refused: the traffic pass goes on without
            log.debug("classified traffic not read", exc_info=True)
            snapshot.apps = self.snapshot.apps
            return None
        if self._app_counters is None:
            self._app_counters = self.store.load_app_counters()
        following = dict(self._app_counters)
        owners = self._directory.owners
        batch.apps, batch.app_counters = app_moves(seen, following, owners)
        for c in seen:
            pid, app = owners.get(c.address), app_of(c.mark)
            if pid is not None and app is not None:
                b, p, f = snapshot.apps.get((pid, app), (0, 0, 0))
                snapshot.apps[(pid, app)] = (b + c.bytes, p + c.packets, f + c.flows)
        return following

    def _names(self) -> list[NameCount]:
        """The names told since the last pass, per peer (whichever end of the flow is
        one of ours), class and name."""
        if self.names is None:
            return []
        return name_counts(self.names(), self._directory.owners)

    def _forget_missing(
        self,
        prev_all: dict[int, Counters],
        following: dict[int, Counters],
        changed: list[tuple[int, Counters]],
    ) -> None:
        """A peer of ours missing from the dump is not in the kernel (disabled, or its device
        is gone): when it comes back its counters start at zero, so the baseline is zero."""
        if len(following) == len(prev_all) and following.keys() == prev_all.keys():
            return  # every peer seen last time is there again: the common case
        known = self._directory.ids
        for pid, prev in prev_all.items():
            if pid in following or pid not in known:
                continue
            zero = Counters(prev.public_key, 0, 0, 0, prev.endpoint)
            following[pid] = zero
            if prev != zero:
                changed.append((pid, zero))

    def _snapshot(
        self,
        taken: float,
        dumps: dict[str, DeviceDump],
        rates: dict[int, tuple[float, float]],
        per_iface: dict[str, list[int]],
        elapsed: float,
    ) -> Snapshot:
        interfaces = {}
        for name, total in self._directory.counts.items():
            rx, tx, online = per_iface.get(name, (0, 0, 0))
            rx_rate, tx_rate = (rx / elapsed, tx / elapsed) if elapsed > 0 else (0.0, 0.0)
            interfaces[name] = InterfaceSample(name, total, online, rx_rate, tx_rate)
        return Snapshot(taken, dumps, self._directory, rates, interfaces)

    # ---- the loop in serve

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="metrics-collector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.collect()
                wait = max(0.0, self.period - (time.monotonic() - started))
            except Exception:  # a failed pass (tool missing, database busy) must not end the loop
                log.exception("traffic collection failed")
                wait = self.period
            self._pause(wait)

    def _pause(self, wait: float) -> None:
        """Until the next pass. The reconcile pass runs every period too and offers the
        dump it took: the first fresh dump newer than the last one used, within the
        window around when this pass is due (align_window), starts the next pass, which
        then takes no dump of its own."""
        if self.fresh is None or not self._taken:
            self._stop.wait(wait)
            return
        early, late = align_window(self.period)
        if self._stop.wait(max(0.0, wait - early)):
            return
        deadline = time.monotonic() + early + late
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self.fresh(self._taken, min(left, STOP_POLL)):
                return

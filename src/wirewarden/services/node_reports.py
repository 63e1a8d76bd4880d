"""What a node's agent measured, into the stores the local collector and resolver use:
traffic samples, classified traffic and server names into the metrics store, DNS query-log rows into
the query log, quota counters into each capped peer's saved usage. Only the node's own
peers count: a row naming a peer of another node (or none known) is dropped, and peer
names come from the database, never from the report."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain.classify.names import Seen, checked
from wirewarden.domain.state import PeerStats
from wirewarden.domain.traffic import Counters, delta
from wirewarden.store.db import retry_on_busy
from wirewarden.store.dns import DnsStore
from wirewarden.store.tables import ExposedPort, Node, Peer
from wirewarden.store.tsdb import (
    AppCounter,
    Batch,
    Delta,
    PeerRef,
    TrafficStore,
    app_moves,
    name_counts,
)

log = logging.getLogger(__name__)
_QUOTA = re.compile(r"^cap_(\d+)_(\d+)_\d+$")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sample(_Row):
    """A peer's kernel counters at time `t` (epoch seconds), as `wg show dump` gives them.
    Peers idle since the last sample may be left out."""

    t: int = Field(ge=0)
    interface: str = Field(max_length=15)
    public_key: str = Field(max_length=44)
    rx: int = Field(ge=0)
    tx: int = Field(ge=0)
    handshake: int = Field(0, ge=0)
    endpoint: str | None = Field(None, max_length=64)


class DnsRow(_Row):
    """One query-log row of the node's resolver (`count` identical queries from `at`)."""

    at: float = Field(ge=0)
    peer_id: int | None = None
    client: str = Field(max_length=64)
    policy: str = Field(max_length=32)
    name: str = Field(max_length=255)
    qtype: int = Field(ge=0, le=65535)
    status: str = Field(max_length=16)
    reason: str | None = Field(None, max_length=1000)
    rcode: int = Field(ge=0, le=65535)
    upstream: str | None = Field(None, max_length=255)
    latency_ms: float | None = None
    count: int = Field(1, ge=1)


class AppRow(_Row):
    """The kernel's running counters of one peer address and class mark at time `t`."""

    t: int = Field(ge=0)
    address: str = Field(max_length=45)
    mark: int = Field(ge=0, le=0xFFFFFFFF)
    bytes: int = Field(ge=0, le=2**62)  # a BIGINT column holds it
    packets: int = Field(ge=0, le=2**62)
    flows: int = Field(0, ge=0, le=2**62)


class NameRow(_Row):
    """Flows between addresses `a` and `b` (one a peer's) of class `app` that named
    server `name`, since the node's last report."""

    t: int = Field(ge=0)
    a: str = Field(max_length=45)
    b: str = Field(max_length=45)
    app: str = Field(max_length=16)
    name: str = Field(max_length=253)
    flows: int = Field(ge=1, le=2**62)


class ExposeRow(_Row):
    """The kernel's running byte count of one forward's target, both ways, at `t`."""

    t: int = Field(ge=0)
    proto: Literal["tcp", "udp"]
    address: str = Field(max_length=45)
    port: int = Field(ge=1, le=65535)
    bytes: int = Field(ge=0, le=2**62)


@dataclass(frozen=True)
class Ingested:
    samples: int
    dns_rows: int
    quotas: dict[str, int]
    dropped: int


def _valid(model: type[_Row], rows: Sequence[dict[str, Any]]) -> tuple[list[Any], int]:
    good, bad = [], 0
    for row in rows:
        try:
            good.append(model.model_validate(row))
        except ValidationError:
            bad += 1
    return good, bad


class NodeReports:
    def __init__(self, sessions: sessionmaker[Session], traffic: TrafficStore) -> None:
        self.sessions, self.traffic = sessions, traffic

    def ingest(
        self,
        node: str,
        samples: Sequence[dict[str, Any]],
        dns_log: Sequence[dict[str, Any]],
        quotas: dict[str, int],
        apps: Sequence[dict[str, Any]] = (),
        names: Sequence[dict[str, Any]] = (),
        exposed: Sequence[dict[str, Any]] = (),
    ) -> Ingested:
        refs = self.traffic.directory(node)
        by_key = {(r.interface, r.public_key): r for r in refs}
        peer_names = {r.id: r.name for r in refs}
        good, bad = _valid(Sample, samples)
        ours = [s for s in good if (s.interface, s.public_key) in by_key]
        self._traffic(ours, by_key)
        by_address = {a: r for r in refs for a in r.addresses}
        counted, bad_apps = _valid(AppRow, apps)
        own_apps = [a for a in counted if a.address in by_address]
        self._apps(own_apps, by_address)
        bad += bad_apps + len(counted) - len(own_apps)
        told, bad_names = _valid(NameRow, names)
        bad += bad_names + self._names(told, {a: r.id for a, r in by_address.items()})
        forwarded, bad_forwards = _valid(ExposeRow, exposed)
        own_forwards = [f for f in forwarded if f.address in by_address]
        self._forwarded(node, own_forwards, by_address)
        bad += bad_forwards + len(forwarded) - len(own_forwards)
        rows, bad_rows = _valid(DnsRow, dns_log)
        kept = [r for r in rows if r.peer_id is None or r.peer_id in peer_names]
        DnsStore(self.sessions, node).write_log([_record(r, peer_names) for r in kept])
        own_quotas = {
            name: used
            for name, used in quotas.items()
            if (m := _QUOTA.match(name)) and int(m.group(1)) in peer_names
        }
        self._usage(own_quotas)
        dropped = bad + bad_rows + (len(good) - len(ours)) + (len(rows) - len(kept))
        dropped += len(quotas) - len(own_quotas)
        if dropped:
            log.warning("node %s: dropped %d report rows not of its own peers", node, dropped)
        return Ingested(len(ours), len(kept), own_quotas, dropped)

    def _traffic(self, samples: list[Sample], by_key: dict[tuple[str, str], PeerRef]) -> None:
        if not samples:
            return
        refs = {(s.interface, s.public_key): by_key[(s.interface, s.public_key)] for s in samples}
        baseline = self.traffic.load_counters_of([r.id for r in refs.values()])
        by_t: dict[int, list[Sample]] = defaultdict(list)
        for s in samples:
            by_t[s.t].append(s)
        for t in sorted(by_t):
            peers: list[Delta] = []
            per_iface: dict[int, list[int]] = defaultdict(lambda: [0, 0])
            counters: list[tuple[int, Counters]] = []
            endpoints: list[tuple[int, str]] = []
            for s in by_t[t]:
                ref = refs[(s.interface, s.public_key)]
                prev = baseline.get(ref.id)
                cur = PeerStats(s.endpoint, s.handshake, s.rx, s.tx)
                rx, tx = delta(prev, cur, s.public_key)
                now = Counters(s.public_key, s.rx, s.tx, s.handshake, s.endpoint)
                baseline[ref.id] = now
                counters.append((ref.id, now))
                if rx or tx:
                    peers.append(Delta(ref.id, rx, tx))
                    sums = per_iface[ref.interface_id]
                    sums[0] += rx
                    sums[1] += tx
                if s.endpoint and (prev is None or prev.endpoint != s.endpoint):
                    endpoints.append((ref.id, s.endpoint))
            interfaces = [Delta(i, rx, tx) for i, (rx, tx) in per_iface.items()]
            self.traffic.record(Batch(t, peers, interfaces, counters, endpoints))

    def _apps(self, rows: list[AppRow], by_address: dict[str, PeerRef]) -> None:
        """What each counter moved since the one stored, per peer and class, by time."""
        if not rows:
            return
        baseline = self.traffic.load_app_counters()
        owners = {address: ref.id for address, ref in by_address.items()}
        by_t: dict[int, list[AppCounter]] = defaultdict(list)
        for r in rows:
            by_t[r.t].append(AppCounter(r.address, r.mark, r.bytes, r.packets, r.flows))
        for t in sorted(by_t):
            deltas, changed = app_moves(by_t[t], baseline, owners)
            self.traffic.record(Batch(t, [], [], [], [], apps=deltas, app_counters=changed))

    def _names(self, rows: list[NameRow], owners: dict[str, int]) -> int:
        """Stores the names of flows of the node's own peers, as the local collector
        does (a name is checked again: the agent is a trust boundary); how many rows
        were dropped."""
        by_t: dict[int, dict[Seen, int]] = defaultdict(dict)
        dropped = 0
        for r in rows:
            seen = checked(r.a, r.b, r.app, r.name)
            if seen is None or (r.a not in owners and r.b not in owners):
                dropped += 1
                continue
            by_t[r.t][seen] = by_t[r.t].get(seen, 0) + r.flows
        for t in sorted(by_t):
            counted = name_counts(by_t[t], owners)
            self.traffic.record(Batch(t, [], [], [], [], names=counted))
        return dropped

    @retry_on_busy
    def _forwarded(self, node: str, rows: list[ExposeRow], by_address: dict[str, PeerRef]) -> None:
        """Each of the node's port mappings gets the count its target last reported."""
        if not rows:
            return
        with self.sessions.begin() as db:
            node_id = db.scalar(select(Node.id).where(Node.name == node))
            for r in sorted(rows, key=lambda r: r.t):
                db.execute(
                    update(ExposedPort)
                    .where(
                        ExposedPort.node_id == node_id,
                        ExposedPort.peer_id == by_address[r.address].id,
                        ExposedPort.proto == r.proto,
                        ExposedPort.local_port == r.port,
                        ExposedPort.hostname.is_(None),
                    )
                    .values(forwarded_bytes=r.bytes)
                    .execution_options(synchronize_session=False)
                )

    @retry_on_busy
    def _usage(self, quotas: dict[str, int]) -> None:
        if not quotas:
            return
        with self.sessions.begin() as db:
            for name, used in quotas.items():
                m = _QUOTA.match(name)
                assert m is not None
                db.execute(
                    update(Peer)
                    .where(Peer.id == int(m.group(1)))
                    .values(cap_used_bytes=used, cap_used_period=int(m.group(2)))
                    .execution_options(synchronize_session=False)
                )


def _record(row: DnsRow, names: dict[int, str]) -> tuple[Any, ...]:
    peer = names.get(row.peer_id) if row.peer_id is not None else None
    return (
        row.at,
        row.peer_id,
        peer,
        row.client,
        row.policy,
        row.name,
        row.qtype,
        row.status,
        row.reason,
        row.rcode,
        row.upstream,
        row.latency_ms,
        row.count,
    )

"""Prometheus exposition: traffic from the collector's last pass, reconcile and API figures.

One registry per container (not prometheus-client's global one), so several apps in one
process (tests) do not collide. Per-peer figures are read from the collector's snapshot at
scrape time: a scrape never runs `wg` or queries the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PromCollector

from wirewarden.domain.state import DesiredState

if TYPE_CHECKING:
    # Only the node runtime has a collector to watch and a reconciler to report: the CLI's
    # control plane need not load them.
    from wirewarden.metrics.collector import Collector
    from wirewarden.reconciler.executor import Report

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


PEER_FAMILIES = (
    (
        "wirewarden_peer_receive_bytes_total",
        "counter",
        "Bytes received from the peer (its upload), as the kernel counts them",
    ),
    (
        "wirewarden_peer_transmit_bytes_total",
        "counter",
        "Bytes sent to the peer (its download), as the kernel counts them",
    ),
    (
        "wirewarden_peer_latest_handshake_seconds",
        "gauge",
        "Unix time of the peer's latest handshake (0: none yet)",
    ),
)


APP_FAMILIES = (
    (
        "wirewarden_peer_app_bytes_total",
        "Bytes of the peer's flows of a class (bittorrent, tls, quic, http, ssh, other), both "
        "ways, as the kernel counts them (from zero when the firewall is written whole)",
    ),
    ("wirewarden_peer_app_packets_total", "Packets of the peer's flows of a class, both ways"),
    ("wirewarden_peer_app_flows_total", "The peer's flows (connections) named as a class"),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class PeerExposition:
    """The per-peer families as Prometheus text, written directly: three samples for each
    of 10,000 peers cost prometheus-client's generic path about a second a scrape, plain
    string joins a few milliseconds. Label sets are cached per peer."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self._labels: dict[tuple[int, str, str, str], str] = {}

    def text(self) -> str:
        peers = self.collector.snapshot.peers.values()
        labels = self._labels
        if len(labels) > 2 * len(peers) + 100:
            labels.clear()  # peers renamed or deleted: start over rather than grow
        rx, tx, hs = [], [], []
        for p in peers:
            ident = (p.id, p.interface, p.name, p.public_key)
            label = labels.get(ident)
            if label is None:
                label = (
                    f'{{interface="{_escape(p.interface)}",peer="{_escape(p.name)}",'
                    f'public_key="{_escape(p.public_key)}"}} '
                )
                labels[ident] = label
            rx.append(label + str(p.rx))
            tx.append(label + str(p.tx))
            hs.append(label + str(p.handshake))
        out = []
        for (name, kind, doc), values in zip(PEER_FAMILIES, (rx, tx, hs), strict=True):
            out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
            out.extend(f"{name}{line}\n" for line in values)
        out.append(self._apps())
        return "".join(out)

    def _apps(self) -> str:
        """Classified traffic per peer and class (few peers classify: generic is enough)."""
        snap = self.collector.snapshot
        found = snap.directory.by_id
        size, packets, flows = [], [], []
        for (pid, app), (b, p, f) in sorted(snap.apps.items()):
            ref = found.get(pid)
            if ref is None:
                continue
            label = (
                f'{{interface="{_escape(ref.interface)}",peer="{_escape(ref.name)}",'
                f'app="{_escape(app)}"}} '
            )
            size.append(label + str(b))
            packets.append(label + str(p))
            flows.append(label + str(f))
        out = []
        for (name, doc), values in zip(APP_FAMILIES, (size, packets, flows), strict=True):
            out.append(f"# HELP {name} {doc}\n# TYPE {name} counter\n")
            out.extend(f"{name}{line}\n" for line in values)
        return "".join(out)


class TrafficExporter(PromCollector):
    """Interface and collector figures (a few samples) through prometheus-client."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def collect(self) -> Iterable[Metric]:
        snap = self.collector.snapshot
        total = GaugeMetricFamily(
            "wirewarden_interface_peers", "Peers configured on the interface", labels=["interface"]
        )
        online = GaugeMetricFamily(
            "wirewarden_interface_peers_online",
            "Peers with a handshake in the last 3 minutes",
            labels=["interface"],
        )
        for iface in snap.interfaces.values():
            total.add_metric([iface.name], iface.peers)
            online.add_metric([iface.name], iface.online)
        stats = self.collector.stats
        passes = CounterMetricFamily(
            "wirewarden_collector_passes", "Traffic collection passes", value=stats.passes
        )
        failed = CounterMetricFamily(
            "wirewarden_collector_errors", "Failed traffic collection passes", value=stats.errors
        )
        took = GaugeMetricFamily(
            "wirewarden_collector_last_duration_seconds",
            "Wall time of the last collection pass",
            value=stats.last_duration,
        )
        at = GaugeMetricFamily(
            "wirewarden_collector_last_run_timestamp_seconds",
            "Unix time of the dump the last pass processed",
            value=snap.at,
        )
        yield from (total, online, passes, failed, took, at)


class Telemetry:
    """The process's Prometheus registry and the instruments other parts report to."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.peers: PeerExposition | None = None
        self.reconcile_duration = Histogram(
            "wirewarden_reconcile_duration_seconds",
            "Wall time of a reconcile pass (observe, plan, apply)",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "wirewarden_reconcile_errors",
            "Reconcile passes that failed to apply something, by interface ('' = global)",
            ["interface"],
            registry=self.registry,
        )
        self.reconcile_last_ok = Gauge(
            "wirewarden_reconcile_last_success",
            "1 when the last reconcile pass applied everything, else 0",
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "wirewarden_http_request_duration_seconds",
            "API and page request latency, by route template",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )

    def watch(self, collector: Collector) -> None:
        self.registry.register(TrafficExporter(collector))
        self.peers = PeerExposition(collector)

    def reconcile_sink(self) -> Callable[[DesiredState, Report], None]:
        """A reconciler report sink recording each pass's duration and errors."""

        # Imported here: the reconciler's modules stay out of CLI commands that read only.
        from wirewarden.reconciler.executor import GLOBAL

        def record(_: DesiredState, report: Report) -> None:
            self.reconcile_duration.observe(report.duration)
            for scope in report.errors:
                self.reconcile_errors.labels("" if scope == GLOBAL else scope).inc()
            self.reconcile_last_ok.set(1 if report.ok else 0)

        return record

    def exposition(self) -> bytes:
        text = generate_latest(self.registry)
        return text + self.peers.text().encode() if self.peers is not None else text


# (node, revision, applied revision, up), as the database holds them.
NodeRows = Callable[[], Iterable[tuple[str, int, int, bool]]]


class NodeExporter(PromCollector):
    """The fleet's nodes at scrape time, read from the database (so every replica tells
    the same): desired revision, the revision its agent last acked, and whether it is up."""

    def __init__(self, rows: NodeRows) -> None:
        self.rows = rows

    def collect(self) -> Iterable[Metric]:
        revision = GaugeMetricFamily(
            "wirewarden_node_revision", "The node's desired-state revision", labels=["node"]
        )
        applied = GaugeMetricFamily(
            "wirewarden_node_applied_revision",
            "The revision the node's agent last acked as applied",
            labels=["node"],
        )
        up = GaugeMetricFamily(
            "wirewarden_node_up",
            "1 while the node heartbeats (or is this one), else 0",
            labels=["node"],
        )
        for node, rev, done, alive in self.rows():
            revision.add_metric([node], rev)
            applied.add_metric([node], done)
            up.add_metric([node], 1 if alive else 0)
        yield from (revision, applied, up)

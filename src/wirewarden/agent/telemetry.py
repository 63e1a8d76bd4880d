"""What the agent tells the control plane about its node, from the kernel's counters:
traffic samples for the report (peers that moved since the last one) and the
heartbeat's load figures. Plain computation over dumps: the agent's loop reads them."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import JsonValue

from wirewarden.domain.classify.names import Seen
from wirewarden.domain.firewall import KernelCounts, ObservedFirewall
from wirewarden.domain.state import DesiredState, DeviceDump, PeerStats
from wirewarden.domain.traffic import ONLINE_SECONDS

Key = tuple[str, str]  # (interface, public key)


class AppSampler:
    """Classified traffic for the report: the kernel's running counters per peer address
    and class mark that moved since the last call (the control plane stores the moves)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, int], tuple[int, int, int]] = {}

    def rows(self, at: float, counts: KernelCounts) -> list[dict[str, JsonValue]]:
        rows: list[dict[str, JsonValue]] = []
        seen: dict[tuple[str, int], tuple[int, int, int]] = {}
        for c in counts.apps:
            key, now = (c.address, c.mark), (c.bytes, c.packets, c.flows)
            seen[key] = now
            if self._last.get(key) != now:
                row: dict[str, JsonValue] = {"t": int(at), "address": c.address}
                row.update(mark=c.mark, bytes=c.bytes, packets=c.packets, flows=c.flows)
                rows.append(row)
        self._last = seen
        return rows


class ExposeSampler:
    """Published ports' traffic for the report: the kernel's running byte count per
    forward target (protocol, peer address, port) that moved since the last call."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, int], int] = {}

    def rows(self, at: float, counts: KernelCounts) -> list[dict[str, JsonValue]]:
        seen: dict[tuple[str, str, int], int] = {}
        for c in counts.exposed:
            key = (c.proto, c.address, c.port)
            seen[key] = seen.get(key, 0) + c.bytes
        rows: list[dict[str, JsonValue]] = [
            {"t": int(at), "proto": proto, "address": address, "port": port, "bytes": size}
            for (proto, address, port), size in seen.items()
            if self._last.get((proto, address, port)) != size
        ]
        self._last = seen
        return rows


def name_rows(at: float, names: dict[Seen, int]) -> list[dict[str, JsonValue]]:
    """The report's rows of server names (the control plane finds the peer)."""
    return [
        {"t": int(at), "a": s.a, "b": s.b, "app": s.app, "name": s.name, "flows": flows}
        for s, flows in names.items()
    ]


@dataclass(frozen=True)
class Load:
    peers: int
    online_peers: int
    rx_bps: int
    tx_bps: int


class Sampler:
    """Turns successive dumps into report rows and rates. A peer whose counters and
    handshake did not move since the last sample is left out (the control plane counts
    from the previous one); its endpoint is sent when it changed."""

    def __init__(self) -> None:
        self._last: dict[Key, PeerStats] = {}
        self._totals: tuple[float, int, int] | None = None

    def samples(self, at: float, dumps: dict[str, DeviceDump]) -> list[dict[str, JsonValue]]:
        rows: list[dict[str, JsonValue]] = []
        seen: dict[Key, PeerStats] = {}
        for name, dump in dumps.items():
            for key, stats in dump.stats.items():
                seen[(name, key)] = stats
                before = self._last.get((name, key))
                if before == stats:
                    continue
                row: dict[str, JsonValue] = {
                    "t": int(at),
                    "interface": name,
                    "public_key": key,
                    "rx": stats.rx_bytes,
                    "tx": stats.tx_bytes,
                    "handshake": stats.latest_handshake,
                }
                if stats.endpoint and (before is None or before.endpoint != stats.endpoint):
                    row["endpoint"] = stats.endpoint
                rows.append(row)
        self._last = seen
        return rows

    def load(self, at: float, dumps: dict[str, DeviceDump]) -> Load:
        """Peers, online peers and the rates since the last call (bits per second, as the
        server sees them: rx is what the peers sent)."""
        peers = online = rx = tx = 0
        for dump in dumps.values():
            for stats in dump.stats.values():
                peers += 1
                online += stats.latest_handshake > at - ONLINE_SECONDS
                rx += stats.rx_bytes
                tx += stats.tx_bytes
        before, self._totals = self._totals, (at, rx, tx)
        if before is None or at <= before[0]:
            return Load(peers, online, 0, 0)
        seconds = at - before[0]
        # Counters that went back (a device re-made) count from zero.
        rx_bps = int(max(0, rx - before[1]) * 8 / seconds)
        tx_bps = int(max(0, tx - before[2]) * 8 / seconds)
        return Load(peers, online, rx_bps, tx_bps)


class CpuMeter:
    """The host's CPU use between two readings of (busy, total) ticks, in percent of all
    its cores."""

    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None

    def percent(self, busy: int, total: int) -> float:
        before, self._last = self._last, (busy, total)
        if before is None or total <= before[1]:
            return 0.0
        return round(100.0 * max(0, busy - before[0]) / (total - before[1]), 1)


class QuotaWatch:
    """The capped peers' quota counters after a reconcile pass, for the report: only
    those that moved since the last time (the control plane keeps the last value)."""

    def __init__(self) -> None:
        self._sent: dict[str, int] = {}

    def moved(self, desired: DesiredState, seen: ObservedFirewall | None) -> dict[str, int]:
        if seen is None:
            return {}
        found: dict[str, int] = {}
        for peer in desired.policy.peers:
            name = peer.quota_name
            if peer.cap is None or name is None or name not in seen.quotas:
                continue
            used = seen.quotas[name].used
            if used > peer.cap.used_floor and self._sent.get(name) != used:
                found[name] = used
        self._sent.update(found)
        return found

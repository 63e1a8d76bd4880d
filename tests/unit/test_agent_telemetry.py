"""What the agent reports from the kernel's counters: samples, load, CPU, quotas."""

from __future__ import annotations

from wirewarden.agent.dnslog import rows_of
from wirewarden.agent.telemetry import CpuMeter, Sampler
from wirewarden.domain import dnswire
from wirewarden.domain.state import DeviceDump, PeerStats


def _dump(stats: dict[str, PeerStats]) -> dict[str, DeviceDump]:
    return {"wg0": DeviceDump("k", 51820, {}, stats)}


def test_samples_leave_idle_peers_out_and_send_an_endpoint_when_it_changes() -> None:
    sampler = Sampler()
    first = sampler.samples(100, _dump({"a": PeerStats("198.51.100.7:1", 90, 10, 20)}))
    assert first == [
        {
            "t": 100,
            "interface": "wg0",
            "public_key": "a",
            "rx": 10,
            "tx": 20,
            "handshake": 90,
            "endpoint": "198.51.100.7:1",
        }
    ]
    assert sampler.samples(110, _dump({"a": PeerStats("198.51.100.7:1", 90, 10, 20)})) == []
    moved = sampler.samples(120, _dump({"a": PeerStats("198.51.100.7:1", 90, 15, 20)}))
    assert moved[0]["rx"] == 15 and "endpoint" not in moved[0]
    roamed = sampler.samples(130, _dump({"a": PeerStats("203.0.113.9:2", 125, 15, 20)}))
    assert roamed[0]["endpoint"] == "203.0.113.9:2"


def test_load_counts_online_peers_and_rates_in_bits_per_second() -> None:
    sampler = Sampler()
    now = 10_000
    stats = {"a": PeerStats(None, now - 10, 0, 0), "b": PeerStats(None, now - 400, 0, 0)}
    first = sampler.load(now, _dump(stats))
    assert (first.peers, first.online_peers, first.rx_bps) == (2, 1, 0)
    later = {"a": PeerStats(None, now, 1000, 500), "b": PeerStats(None, now - 400, 0, 0)}
    load = sampler.load(now + 10, _dump(later))
    assert (load.rx_bps, load.tx_bps) == (800, 400)
    # A device made again starts its counters at zero: no negative rate.
    assert sampler.load(now + 20, _dump(stats)).rx_bps == 0


def test_cpu_percent_between_two_readings() -> None:
    meter = CpuMeter()
    assert meter.percent(100, 1000) == 0.0
    assert meter.percent(150, 1200) == 25.0
    assert meter.percent(150, 1200) == 0.0


def test_query_log_records_become_report_rows_with_the_name_as_text() -> None:
    name = b"\x03ads\x07example\x00"  # as the resolver keeps it: the question's wire form
    assert dnswire.wire_to_text(name) == "ads.example"
    record = (1.5, 3, "phone", "10.8.0.2", "default", name, 1, "blocked", "deny", 3, None, None, 2)
    assert rows_of([record]) == [
        {
            "at": 1.5,
            "peer_id": 3,
            "client": "10.8.0.2",
            "policy": "default",
            "name": "ads.example",
            "qtype": 1,
            "status": "blocked",
            "reason": "deny",
            "rcode": 3,
            "upstream": None,
            "latency_ms": None,
            "count": 2,
        }
    ]


def test_classified_counters_are_reported_when_they_moved() -> None:
    from wirewarden.agent.telemetry import AppSampler
    from wirewarden.domain.firewall import AppCount, KernelCounts

    sampler = AppSampler()
    first = KernelCounts(apps=(AppCount("10.8.0.2", 7, 10, 1000), AppCount("10.8.0.3", 7, 1, 9)))
    assert [r["address"] for r in sampler.rows(100.0, first)] == ["10.8.0.2", "10.8.0.3"]
    moved = KernelCounts(apps=(AppCount("10.8.0.2", 7, 12, 1500), AppCount("10.8.0.3", 7, 1, 9)))
    assert sampler.rows(160.0, moved) == [
        {"t": 160, "address": "10.8.0.2", "mark": 7, "bytes": 1500, "packets": 12, "flows": 0}
    ]
    assert sampler.rows(220.0, moved) == []


def test_published_ports_traffic_is_reported_per_target_when_it_moved() -> None:
    from wirewarden.agent.telemetry import ExposeSampler
    from wirewarden.domain.firewall import ExposeCount, KernelCounts

    sampler = ExposeSampler()
    # Both directions' elements of one target are one count.
    first = KernelCounts(
        exposed=(
            ExposeCount("tcp", "10.8.0.2", 3000, 4, 400),
            ExposeCount("tcp", "10.8.0.2", 3000, 2, 100),
        )
    )
    assert sampler.rows(100.0, first) == [
        {"t": 100, "proto": "tcp", "address": "10.8.0.2", "port": 3000, "bytes": 500}
    ]
    assert sampler.rows(160.0, first) == []
    more = KernelCounts(exposed=(ExposeCount("tcp", "10.8.0.2", 3000, 9, 900),))
    assert [r["bytes"] for r in sampler.rows(220.0, more)] == [900]

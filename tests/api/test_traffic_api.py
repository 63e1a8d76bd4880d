"""Traffic history, usage, top peers and /metrics through the API (in-memory data plane with
counters the tests set, collected by the real collector into the real SQLite store)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from wirewarden.bootstrap import Container, build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.state import PeerStats
from wirewarden.web.app import create_app


def make_peer(client: TestClient, ifname: str, name: str) -> dict[str, Any]:
    response = client.post(f"/api/v1/interfaces/{ifname}/peers", json={"name": name})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def setup(client: TestClient) -> dict[str, Any]:
    response = client.post("/api/v1/interfaces", json={"name": "wg0", "address": "10.8.0.1/24"})
    assert response.status_code == 201, response.text
    return {"a": make_peer(client, "wg0", "alice"), "b": make_peer(client, "wg0", "bob")}


def move(
    container: Container, dataplane: FakeDataplane, peer: dict[str, Any], rx: int, tx: int
) -> None:
    """The kernel's counters for the peer grow by rx/tx; the collector takes a pass."""
    key = ("wg0", peer["public_key"])
    old = dataplane.counters.get(key, PeerStats(None, 0, 0, 0))
    dataplane.counters[key] = PeerStats(
        "198.51.100.9:51000", int(time.time()), old.rx_bytes + rx, old.tx_bytes + tx
    )
    time.sleep(0.002)  # a new dump, not the one the collector saw
    container.collector.collect()


def test_peer_traffic_usage_and_interface_traffic(
    client: TestClient, container: Container, dataplane: FakeDataplane, setup: dict[str, Any]
) -> None:
    alice, bob = setup["a"], setup["b"]
    move(container, dataplane, alice, 1000, 20_000_000)
    move(container, dataplane, alice, 500, 1_000_000)
    move(container, dataplane, bob, 7, 9)

    body = client.get(f"/api/v1/peers/{alice['id']}/traffic").json()
    assert body["step"] == 300  # 24 h by default, in 5-minute buckets
    assert len(body["points"]) in (288, 289)
    assert set(body["points"][0]) == {"t", "rx_bytes", "tx_bytes"}
    assert (body["rx_bytes"], body["tx_bytes"]) == (1500, 21_000_000)
    assert sum(p["tx_bytes"] for p in body["points"]) == 21_000_000

    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    body = client.get(f"/api/v1/peers/{alice['id']}/traffic", params={"since": hour_ago}).json()
    assert body["step"] == 60
    assert body["tx_bytes"] == 21_000_000

    iface = client.get("/api/v1/interfaces/wg0/traffic", params={"step": 3600}).json()
    assert iface["step"] == 3600
    assert (iface["rx_bytes"], iface["tx_bytes"]) == (1507, 21_000_009)

    usage = client.get(f"/api/v1/peers/{alice['id']}/usage").json()
    assert usage["traffic_bytes"] == usage["used_bytes"] == 21_001_500  # no cap: the history
    assert (usage["rx_bytes"], usage["tx_bytes"]) == (1500, 21_000_000)
    assert usage["cap_reset_day"] == 1 and usage["cap_bytes"] is None
    assert usage["period_start"] < usage["period_end"]

    seen = client.get(f"/api/v1/peers/{alice['id']}/endpoints").json()
    assert [e["endpoint"] for e in seen] == ["198.51.100.9:51000"]
    assert client.get("/api/v1/peers/999/endpoints").status_code == 404

    top = client.get("/api/v1/traffic/top").json()
    assert [(p["name"], p["total_bytes"]) for p in top["items"]] == [
        ("alice", 21_001_500),
        ("bob", 16),
    ]
    top = client.get("/api/v1/traffic/top", params={"limit": 1, "interface": "wg0"}).json()
    assert [p["name"] for p in top["items"]] == ["alice"]


def test_bad_ranges_are_422_naming_the_field(client: TestClient, setup: dict[str, Any]) -> None:
    pid = setup["a"]["id"]
    now = datetime.now(UTC)
    response = client.get(
        f"/api/v1/peers/{pid}/traffic",
        params={"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "since"
    response = client.get(f"/api/v1/peers/{pid}/traffic", params={"step": 0})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "step"]
    response = client.get(
        f"/api/v1/peers/{pid}/traffic",
        params={"since": (now - timedelta(days=300)).isoformat(), "step": 60},
    )
    assert response.status_code == 200
    assert response.json()["step"] == 3600  # only the hourly tier holds 300 days back
    response = client.get(f"/api/v1/peers/{pid}/traffic", params={"since": "yesterday"})
    assert response.status_code == 422


def test_missing_peer_or_interface_is_404(client: TestClient) -> None:
    assert client.get("/api/v1/peers/999/traffic").status_code == 404
    assert client.get("/api/v1/peers/999/usage").status_code == 404
    assert client.get("/api/v1/interfaces/nope/traffic").status_code == 404
    assert client.get("/api/v1/traffic/top", params={"interface": "nope"}).status_code == 404


def test_traffic_needs_a_token(anon: TestClient) -> None:
    assert anon.get("/api/v1/peers/1/traffic").status_code == 401
    assert anon.get("/api/v1/traffic/top").status_code == 401


def test_a_deleted_peer_drops_out_of_top_but_not_out_of_the_interface(
    client: TestClient, container: Container, dataplane: FakeDataplane, setup: dict[str, Any]
) -> None:
    move(container, dataplane, setup["b"], 100, 100)
    assert client.delete(f"/api/v1/peers/{setup['b']['id']}").status_code == 204
    move(container, dataplane, setup["a"], 1, 1)
    assert [p["name"] for p in client.get("/api/v1/traffic/top").json()["items"]] == ["alice"]
    iface = client.get("/api/v1/interfaces/wg0/traffic").json()
    assert iface["rx_bytes"] == 101


# ---- /metrics


def test_metrics_show_peer_counters_and_interface_figures(
    client: TestClient, container: Container, dataplane: FakeDataplane, setup: dict[str, Any]
) -> None:
    move(container, dataplane, setup["a"], 1234, 5678)
    client.get("/api/v1/interfaces")  # one timed request
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    labels = f'interface="wg0",peer="alice",public_key="{setup["a"]["public_key"]}"'
    assert f"wirewarden_peer_receive_bytes_total{{{labels}}} 1234\n" in text
    assert f"wirewarden_peer_transmit_bytes_total{{{labels}}} 5678\n" in text
    assert "# TYPE wirewarden_peer_receive_bytes_total counter" in text
    # the whole page parses as Prometheus text, the hand-written peer families included
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    samples = parsed["wirewarden_peer_transmit_bytes"].samples
    assert {s.labels["peer"]: s.value for s in samples} == {"alice": 5678, "bob": 0}
    assert f"wirewarden_peer_latest_handshake_seconds{{{labels}}}" in text
    assert 'wirewarden_interface_peers{interface="wg0"} 2.0' in text
    assert 'wirewarden_interface_peers_online{interface="wg0"} 1.0' in text
    assert 'method="GET",route="/api/v1/interfaces",status="200"' in text
    assert 'method="POST",route="/api/v1/interfaces/{name}/peers",status="201"' in text
    assert "wirewarden_http_request_duration_seconds_bucket" in text
    assert "wirewarden_reconcile_duration_seconds_count" in text


def test_metrics_access(container: Container, token: str) -> None:
    app = create_app(container, run_loop=False)
    with TestClient(app) as remote:
        assert remote.get("/metrics").status_code == 401
        assert remote.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = remote.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        assert local.get("/metrics").status_code == 200
    with TestClient(app, client=("::1", 40000)) as local6:
        assert local6.get("/metrics").status_code == 200


@pytest.fixture
def token_only(tmp_path: Path) -> Iterator[Container]:
    settings = Settings(
        data_dir=tmp_path / "d2", metrics_access="token", metrics_token="scrape-secret-123"
    )
    built = build(settings, dataplane=FakeDataplane(), stats_max_age=0)
    yield built
    built.engine.dispose()


def test_metrics_in_token_mode_refuse_loopback_without_a_token(token_only: Container) -> None:
    app = create_app(token_only, run_loop=False)
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        assert local.get("/metrics").status_code == 401
        secret = {"Authorization": "Bearer scrape-secret-123"}
        assert local.get("/metrics", headers=secret).status_code == 200

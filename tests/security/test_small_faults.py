"""Faults at the edges: a huge paging offset, an update racing a delete, a peer deleted
during a metrics pass, a full disk during a peer create. Each must be a clean answer
(422, 404, the other peers' rows written, 507) and leave nothing half-done."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from wirewarden.bootstrap import Container
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.state import PeerStats
from wirewarden.services.context import SYSTEM

HUGE = 2**63


@pytest.fixture
def wg0(client: TestClient) -> str:
    assert client.post("/api/v1/interfaces", json={"name": "wg0"}).status_code == 201
    return "wg0"


def _peer(client: TestClient, name: str) -> dict[str, Any]:
    made = client.post("/api/v1/interfaces/wg0/peers", json={"name": name})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


@pytest.mark.parametrize(
    "route",
    [
        "/api/v1/interfaces",
        "/api/v1/interfaces/wg0/peers",
        "/api/v1/audit",
        "/api/v1/dns/queries",
        "/api/v1/users",
    ],
)
def test_a_huge_offset_is_a_422_naming_the_field(client: TestClient, wg0: str, route: str) -> None:
    response = client.get(route, params={"offset": HUGE})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "offset"]


def test_a_patch_racing_a_delete_is_a_404(
    client: TestClient, container: Container, wg0: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = _peer(client, "laptop")["id"]
    found = container.peers.find

    def find_then_lose(db: Any, peer_id: int, actor: Any = SYSTEM) -> Any:
        row = found(db, peer_id, actor)
        # Another writer (a second replica, another process) deletes it right now.
        with container.engine.begin() as other:
            other.execute(text("DELETE FROM peers WHERE id = :id"), {"id": peer_id})
        return row

    monkeypatch.setattr(container.peers, "find", find_then_lose)
    response = client.patch(f"/api/v1/peers/{pid}", json={"mesh": True})
    assert response.status_code == 404, response.text


def test_a_peer_deleted_during_a_metrics_pass_costs_only_its_own_rows(
    client: TestClient,
    container: Container,
    dataplane: FakeDataplane,
    wg0: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    peers = {name: _peer(client, name) for name in ("a", "b", "kept")}
    collector = container.collector
    collector.collect()  # the baseline
    for peer in peers.values():
        dataplane.counters[("wg0", peer["public_key"])] = PeerStats(None, 0, 5000, 7000)
    # Peers deleted after each read of the peer directory, before the write that follows.
    doomed = [peers["a"]["id"], peers["b"]["id"]]
    refresh = collector._refresh_directory

    def refresh_then_delete() -> None:
        refresh()
        if doomed:
            container.peers.delete(doomed.pop(0), SYSTEM)

    monkeypatch.setattr(collector, "_refresh_directory", refresh_then_delete)
    collector.collect()
    kept = collector.store.counters(peers["kept"]["id"])
    assert kept is not None and (kept.rx, kept.tx) == (5000, 7000)
    assert collector.stats.errors == 0


def test_a_full_disk_is_a_507_and_leaves_no_kernel_peer(
    client: TestClient,
    container: Container,
    dataplane: FakeDataplane,
    wg0: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _peer(client, "first")
    dialect = container.engine.dialect

    def disk_full(_conn: Any) -> None:
        # What each driver raises when the database's disk is full (ENOSPC while writing).
        if dialect.name == "sqlite":
            raise sqlite3.OperationalError("database or disk is full")
        raise psycopg.errors.DiskFull("could not extend file: No space left on device")

    monkeypatch.setattr(dialect, "do_commit", disk_full)
    response = client.post("/api/v1/interfaces/wg0/peers", json={"name": "second"})
    monkeypatch.undo()
    assert response.status_code == 507, response.text
    assert str(container.settings.data_dir.resolve()) in response.json()["detail"]
    # Neither stored nor in the kernel: the kernel holds exactly what the database does.
    stored = {p["public_key"] for p in client.get("/api/v1/interfaces/wg0/peers").json()["items"]}
    assert len(stored) == 1
    assert set(dataplane.devices["wg0"].peers) == stored

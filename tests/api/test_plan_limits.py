"""A plan's limits are hard (issue 16): checked in the transaction that would break them,
on SQLite and PostgreSQL; a tenant admin cannot raise a peer over its plan."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

TENANTS = "/api/v1/tenants"


def _tenant(client: TestClient, **plan: Any) -> None:
    assert client.put("/api/v1/plans/small", json=plan).status_code == 201
    assert client.post(TENANTS, json={"name": "acme", "plan": "small"}).status_code == 201


def test_parallel_creates_stop_at_max_peers(client: TestClient) -> None:
    _tenant(client, max_peers=5)

    def create(number: int) -> Any:
        return client.post("/api/v1/interfaces/t-acme/peers", json={"name": f"p{number}"})

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(create, range(20)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 5 + [409] * 15, [a.text for a in answers if a.status_code >= 500]
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["field"] == "max_peers" and "5" in refused["detail"]
    assert client.get("/api/v1/interfaces/t-acme/peers").json()["total"] == 5
    assert client.get(f"{TENANTS}/acme").json()["peers"] == 5
    # The next one, alone, is refused too; a peer deleted makes room again.
    again = client.post("/api/v1/interfaces/t-acme/peers", json={"name": "late"})
    assert again.status_code == 409 and again.json()["field"] == "max_peers"
    first = next(a.json()["id"] for a in answers if a.status_code == 201)
    assert client.delete(f"/api/v1/peers/{first}").status_code == 204
    assert client.post("/api/v1/interfaces/t-acme/peers", json={"name": "late"}).status_code == 201


def test_a_new_peer_starts_at_the_plans_limits(client: TestClient) -> None:
    _tenant(client, rate_down_kbit=8000, rate_up_kbit=2000, data_cap_bytes=10**9)
    made = client.post("/api/v1/interfaces/t-acme/peers", json={"name": "a"}).json()
    assert (made["rate_down_kbit"], made["rate_up_kbit"], made["data_cap_bytes"]) == (
        8000,
        2000,
        10**9,
    )
    other = client.post("/api/v1/interfaces", json={"name": "wg0"})
    assert other.status_code == 201
    free = client.post("/api/v1/interfaces/wg0/peers", json={"name": "b"}).json()
    assert free["rate_down_kbit"] is None  # the default tenant has no plan


def test_a_tenant_admin_cannot_raise_a_peer_over_the_plan(
    client: TestClient, make_user: Any, browser: Callable[..., TestClient]
) -> None:
    _tenant(client, rate_down_kbit=8000, data_cap_bytes=10**9)
    make_user("alice", role="tenant-admin", tenant="acme")
    alice = browser("alice")
    headers = {"X-CSRF-Token": alice.csrf}  # type: ignore[attr-defined]
    peer = alice.post("/api/v1/interfaces/t-acme/peers", json={"name": "a"}, headers=headers).json()
    url = f"/api/v1/peers/{peer['id']}"
    for body, field in (
        ({"rate_down_kbit": 8001}, "rate_down_kbit"),
        ({"rate_down_kbit": None}, "rate_down_kbit"),
        ({"data_cap_bytes": 2 * 10**9}, "data_cap_bytes"),
    ):
        refused = alice.patch(url, json=body, headers=headers)
        assert refused.status_code in (403, 422), refused.text
        assert refused.json()["field"] == field
    stored = client.get(url).json()
    assert (stored["rate_down_kbit"], stored["data_cap_bytes"]) == (8000, 10**9)
    lower = alice.patch(url, json={"rate_down_kbit": 4000}, headers=headers)
    assert lower.status_code == 200 and lower.json()["rate_down_kbit"] == 4000
    # The operator may go past the plan.
    assert client.patch(url, json={"rate_down_kbit": 50_000}).json()["rate_down_kbit"] == 50_000

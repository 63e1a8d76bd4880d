"""Per-tenant DNS (issue 16): a tenant admin's own policies beside the global ones, its
tenant's default policy, and a query log and stats of its own peers only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container
from wirewarden.store.tables import DnsQuery

POLICIES = "/api/v1/dns/policies"


@pytest.fixture
def two(client: TestClient, make_user: Any, browser: Callable[..., TestClient]) -> Any:
    """Tenants acme and beta with a peer each; their admins alice and bob signed in."""
    peers = {}
    for tenant in ("acme", "beta"):
        assert client.post("/api/v1/tenants", json={"name": tenant}).status_code == 201
        made = client.post(f"/api/v1/interfaces/t-{tenant}/peers", json={"name": f"{tenant}-pc"})
        peers[tenant] = made.json()["id"]
    make_user("alice", role="tenant-admin", tenant="acme")
    make_user("bob", role="tenant-admin", tenant="beta")
    alice, bob = browser("alice"), browser("bob")
    for c in (alice, bob):
        c.headers["X-CSRF-Token"] = c.csrf  # type: ignore[attr-defined]
    return alice, bob, peers


def test_a_tenant_admin_owns_its_policies(client: TestClient, two: Any) -> None:
    alice, bob, peers = two
    made = bob.put(f"{POLICIES}/strict", json={"deny": ["games.example"]})
    assert made.status_code == 201, made.text
    assert made.json()["tenant"] == "beta"
    # Other tenants neither see nor touch it; the same name is a policy of their own.
    assert "strict" not in {p["name"] for p in alice.get(POLICIES).json()}
    assert alice.get(f"{POLICIES}/strict").status_code == 404
    own = alice.put(f"{POLICIES}/strict", json={"deny": ["news.example"]})
    assert own.status_code == 201 and own.json()["tenant"] == "acme"
    assert bob.get(f"{POLICIES}/strict").json()["deny"] == ["games.example"]
    # The admin's list is the global ones; global ones are read-only to tenant admins.
    assert "strict" not in {p["name"] for p in client.get(POLICIES).json()}
    assert alice.get(f"{POLICIES}/default").json()["tenant"] is None
    assert alice.delete(f"{POLICIES}/default").status_code == 403
    # Its peers use it, and it is the tenant's default; another tenant's admin cannot set it.
    set_peer = bob.patch(f"/api/v1/peers/{peers['beta']}", json={"dns_policy": "strict"})
    assert set_peer.status_code == 200, set_peer.text
    assert bob.get(f"{POLICIES}/strict").json()["peers"] == 1
    assert bob.put("/api/v1/dns/tenants/beta", json={"policy": "strict"}).status_code == 204
    assert client.get("/api/v1/tenants/beta").json()["dns_policy"] == "strict"
    assert alice.put("/api/v1/dns/tenants/beta", json={"policy": None}).status_code == 404
    assert client.get("/api/v1/tenants/beta").json()["dns_policy"] == "strict"
    # In use: not deleted; once free, its owner deletes it.
    assert bob.delete(f"{POLICIES}/strict").status_code == 409
    bob.put("/api/v1/dns/tenants/beta", json={"policy": None})
    bob.patch(f"/api/v1/peers/{peers['beta']}", json={"dns_policy": None})
    assert alice.delete(f"{POLICIES}/strict").status_code == 204  # acme's own
    assert bob.get(f"{POLICIES}/strict").status_code == 200
    assert bob.delete(f"{POLICIES}/strict").status_code == 204


def test_query_log_and_stats_show_only_the_tenants_peers(
    client: TestClient, container: Container, two: Any
) -> None:
    alice, _, peers = two
    with container.deps.sessions.begin() as db:
        for tenant, peer_id in peers.items():
            db.add(
                DnsQuery(
                    at=datetime.now(UTC),
                    peer_id=peer_id,
                    peer=f"{tenant}-pc",
                    client="10.88.0.2",
                    policy="default",
                    name=f"www.{tenant}-secret.example",
                    qtype="A",
                    status="blocked",
                    rcode="NXDOMAIN",
                )
            )
    names = {q["name"] for q in alice.get("/api/v1/dns/queries").json()["items"]}
    assert names == {"www.acme-secret.example"}
    other = alice.get(f"/api/v1/dns/queries?peer_id={peers['beta']}").json()
    assert other["items"] == [] and other["total"] == 0
    stats = alice.get("/api/v1/dns/stats").json()
    assert stats["queries"] == 1
    assert [n["name"] for n in stats["top_blocked"]] == ["www.acme-secret.example"]
    assert [p["key"] for p in stats["by_peer"]] == ["acme-pc"]
    page = alice.get("/dns")
    assert page.status_code == 200
    assert "acme-secret" in page.text and "beta-secret" not in page.text
    assert client.get("/api/v1/dns/stats").json()["queries"] == 2


def test_a_tenant_admin_edits_its_own_policies_on_the_dns_page(
    client: TestClient, two: Any
) -> None:
    alice, bob, _ = two
    form = {"csrf_token": alice.csrf, "name": "homework", "deny": "games.example"}
    saved = alice.post("/dns/policies", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    assert alice.get(f"{POLICIES}/homework").json()["tenant"] == "acme"
    assert bob.get(f"{POLICIES}/homework").status_code == 404
    page = alice.get("/dns").text
    assert "homework</strong> (acme&#39;s own)" in page or "homework</strong> (acme's own)" in page
    # The global default: shown, not editable here; no form posts its name.
    assert "default</strong> (shared)" in page
    assert '<input type="hidden" name="name" value="default">' not in page
    assert '<input type="hidden" name="name" value="homework">' in page
    assert client.get(f"{POLICIES}/default").json()["deny"] == []


def test_a_local_list_is_no_blocklist_for_a_tenant_admin(client: TestClient, two: Any) -> None:
    alice, _, _ = two
    # Outside the local lists for anyone (422); an admin's local list, for admins only.
    outside = alice.put(f"{POLICIES}/sneaky", json={"blocklists": ["/etc/shadow"]})
    assert outside.status_code == 422 and outside.json()["detail"][0]["loc"][-1] == "blocklists"
    local = alice.put(f"{POLICIES}/sneaky", json={"blocklists": ["office.txt"]})
    assert local.status_code == 403, local.text
    assert local.json()["field"] == "blocklists"
    assert alice.get(f"{POLICIES}/sneaky").status_code == 404

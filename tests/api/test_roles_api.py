"""What each role may see and do through the API: admin, tenant-admin, member."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.services.context import SYSTEM
from wirewarden.store.tables import Interface, Tenant

Browser = Callable[..., TestClient]


def csrf(user: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": user.csrf}  # type: ignore[attr-defined]


@pytest.fixture
def wg0(client: TestClient) -> str:
    assert client.post("/api/v1/interfaces", json={"name": "wg0"}).status_code == 201
    return "wg0"


def test_member_sees_and_changes_only_own_peers(
    client: TestClient, browser: Browser, make_user: Any, dataplane: FakeDataplane, wg0: str
) -> None:
    make_user("alice")
    make_user("bob")
    alice, bob = browser("alice"), browser("bob")
    mine = alice.post(
        f"/api/v1/interfaces/{wg0}/peers", json={"name": "a-phone"}, headers=csrf(alice)
    )
    assert mine.status_code == 201 and mine.json()["owner"] == "alice"
    theirs = bob.post(
        f"/api/v1/interfaces/{wg0}/peers", json={"name": "b-laptop"}, headers=csrf(bob)
    )
    assert theirs.status_code == 201
    admins = client.post(f"/api/v1/interfaces/{wg0}/peers", json={"name": "router"})
    assert admins.json()["owner"] is None
    listed = alice.get(f"/api/v1/interfaces/{wg0}/peers").json()
    assert [p["name"] for p in listed["items"]] == ["a-phone"] and listed["total"] == 1
    assert client.get(f"/api/v1/interfaces/{wg0}/peers").json()["total"] == 3
    # Someone else's peer by id: 404 on every route, and nothing changes.
    other = theirs.json()["id"]
    assert alice.get(f"/api/v1/peers/{other}").status_code == 404
    assert alice.get(f"/api/v1/peers/{other}/config").status_code == 404
    assert alice.get(f"/api/v1/peers/{other}/qr").status_code == 404
    assert (
        alice.patch(
            f"/api/v1/peers/{other}", json={"enabled": False}, headers=csrf(alice)
        ).status_code
        == 404
    )
    assert alice.delete(f"/api/v1/peers/{other}", headers=csrf(alice)).status_code == 404
    assert (
        alice.post(f"/api/v1/peers/{other}/share", json={}, headers=csrf(alice)).status_code == 404
    )
    assert bob.get(f"/api/v1/peers/{other}").json()["enabled"] is True
    assert len(dataplane.devices[wg0].peers) == 3
    # Their own device: config, QR, disable, delete.
    own = mine.json()["id"]
    assert "PrivateKey" in alice.get(f"/api/v1/peers/{own}/config").text
    assert alice.get(f"/api/v1/peers/{own}/qr").headers["content-type"] == "image/svg+xml"
    response = alice.patch(f"/api/v1/peers/{own}", json={"enabled": False}, headers=csrf(alice))
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert alice.delete(f"/api/v1/peers/{own}", headers=csrf(alice)).status_code == 204


def test_member_device_limit(
    browser: Browser, make_user: Any, wg0: str, client: TestClient
) -> None:
    make_user("alice", device_limit=2)
    alice = browser("alice")
    for name in ("one", "two"):
        response = alice.post(
            f"/api/v1/interfaces/{wg0}/peers", json={"name": name}, headers=csrf(alice)
        )
        assert response.status_code == 201
    third = alice.post(
        f"/api/v1/interfaces/{wg0}/peers", json={"name": "three"}, headers=csrf(alice)
    )
    assert third.status_code == 403 and "limit" in third.json()["detail"]
    # The admin raises the limit; the member may add one more.
    assert client.patch("/api/v1/users/alice", json={"device_limit": 3}).status_code == 200
    again = alice.post(
        f"/api/v1/interfaces/{wg0}/peers", json={"name": "three"}, headers=csrf(alice)
    )
    assert again.status_code == 201
    assert alice.get("/api/v1/auth/me").json()["device_count"] == 3


def test_member_cannot_manage_interfaces_users_or_others_fields(
    browser: Browser, make_user: Any, wg0: str
) -> None:
    make_user("alice")
    alice = browser("alice")
    h = csrf(alice)
    assert alice.get("/api/v1/interfaces").json()["total"] == 1  # may read to pick one
    assert alice.post("/api/v1/interfaces", json={"name": "wg1"}, headers=h).status_code == 403
    assert (
        alice.patch(f"/api/v1/interfaces/{wg0}", json={"mtu": 1400}, headers=h).status_code == 403
    )
    assert alice.delete(f"/api/v1/interfaces/{wg0}", headers=h).status_code == 403
    assert alice.get(f"/api/v1/interfaces/{wg0}/config").status_code == 403
    assert alice.get("/api/v1/users").status_code == 403
    body = {"name": "sneaky", "password": "a long enough passphrase", "role": "admin"}
    assert alice.post("/api/v1/users", json=body, headers=h).status_code == 403
    # Routing other networks to oneself is for whoever runs the interface.
    response = alice.post(
        f"/api/v1/interfaces/{wg0}/peers",
        json={"name": "grab", "routed_ips": "10.20.0.0/24"},
        headers=h,
    )
    assert response.status_code == 403 and response.json()["field"] == "routed_ips"
    own = alice.post(f"/api/v1/interfaces/{wg0}/peers", json={"name": "mine"}, headers=h).json()
    response = alice.patch(
        f"/api/v1/peers/{own['id']}", json={"routed_ips": "10.20.0.0/24"}, headers=h
    )
    assert response.status_code == 403
    response = alice.post(
        f"/api/v1/interfaces/{wg0}/peers", json={"name": "gift", "owner": "root"}, headers=h
    )
    assert response.status_code == 403


def test_tenant_admin_stays_inside_their_tenant(
    client: TestClient, browser: Browser, container: Container, make_user: Any, wg0: str
) -> None:
    with container.deps.sessions.begin() as db:
        db.add(Tenant(name="acme"))
    make_user("boss", role="tenant-admin", tenant="acme")
    make_user("carol", tenant="acme")
    make_user("dave")  # default tenant
    boss = browser("boss")
    h = csrf(boss)
    # wg0 belongs to the default tenant: not visible.
    assert boss.get("/api/v1/interfaces").json()["total"] == 0
    assert boss.get(f"/api/v1/interfaces/{wg0}").status_code == 404
    assert boss.get(f"/api/v1/interfaces/{wg0}/peers").status_code == 404
    # Their own interface lands in their tenant.
    assert boss.post("/api/v1/interfaces", json={"name": "acme0"}, headers=h).status_code == 201
    with container.deps.sessions() as db:
        from sqlalchemy import select

        iface = db.scalar(select(Interface).where(Interface.name == "acme0"))
        assert iface is not None
        tenant = db.scalar(select(Tenant.name).where(Tenant.id == iface.tenant_id))
    assert tenant == "acme"
    peer = boss.post(
        "/api/v1/interfaces/acme0/peers", json={"name": "c-phone", "owner": "carol"}, headers=h
    )
    assert peer.status_code == 201 and peer.json()["owner"] == "carol"
    # Someone outside the tenant cannot own a device in it.
    response = boss.post(
        "/api/v1/interfaces/acme0/peers", json={"name": "d-phone", "owner": "dave"}, headers=h
    )
    assert response.status_code == 422
    # Users: only members of their tenant, and only members may be created.
    names = [u["name"] for u in boss.get("/api/v1/users").json()["items"]]
    assert names == ["boss", "carol"]
    assert boss.get("/api/v1/users/dave").status_code == 404
    body = {"name": "erin", "password": "a long enough passphrase"}
    created = boss.post("/api/v1/users", json=body, headers=h)
    assert created.status_code == 201 and created.json()["tenant"] == "acme"
    body = {"name": "frank", "password": "a long enough passphrase", "role": "admin"}
    assert boss.post("/api/v1/users", json=body, headers=h).status_code == 403
    # Admin peers in the default tenant stay hidden.
    admin_peer = client.post(f"/api/v1/interfaces/{wg0}/peers", json={"name": "x"}).json()
    assert boss.get(f"/api/v1/peers/{admin_peer['id']}").status_code == 404


def test_tokens_act_as_their_owner(
    client_of: Any, container: Container, make_user: Any, wg0: str, client: TestClient
) -> None:
    make_user("alice")
    token = container.tokens.create("alices", ["read", "write", "admin"], SYSTEM, owner="alice")
    alice = client_of(token)
    other = client.post(f"/api/v1/interfaces/{wg0}/peers", json={"name": "router"}).json()
    # An admin-scoped token of a member is still a member.
    assert alice.get("/api/v1/users").status_code == 403
    assert alice.get(f"/api/v1/peers/{other['id']}").status_code == 404
    response = alice.post(f"/api/v1/interfaces/{wg0}/peers", json={"name": "cli-made"})
    assert response.status_code == 201 and response.json()["owner"] == "alice"


def test_admin_user_management(client: TestClient, browser: Browser, make_user: Any) -> None:
    body = {"name": "alice", "password": "a long enough passphrase", "role": "member"}
    created = client.post("/api/v1/users", json=body)
    assert created.status_code == 201
    assert created.json()["device_limit"] == 5 and created.json()["tenant"] == "default"
    assert client.post("/api/v1/users", json=body).status_code == 409
    weak = {"name": "bob", "password": "password123"}
    response = client.post("/api/v1/users", json=weak)
    assert response.status_code == 422 and response.json()["field"] == "password"
    short = {"name": "bob", "password": "short"}
    assert client.post("/api/v1/users", json=short).json()["field"] == "password"
    alice = browser("alice")
    new = {"password": "another long passphrase"}
    assert client.post("/api/v1/users/alice/password", json=new).status_code == 204
    assert alice.get("/api/v1/auth/me").status_code == 401  # sessions ended with the reset
    browser("alice", "another long passphrase")
    assert client.delete("/api/v1/users/alice").status_code == 204
    assert client.get("/api/v1/users/alice").status_code == 404


def test_last_admin_stays(browser: Browser, make_user: Any, client: TestClient) -> None:
    make_user("root", role="admin")
    response = client.patch("/api/v1/users/root", json={"role": "member"})
    assert response.status_code == 409
    assert client.delete("/api/v1/users/root").status_code == 409
    make_user("second", role="admin")
    assert client.patch("/api/v1/users/root", json={"disabled": True}).status_code == 200
    root = browser("second")
    # Not oneself, though.
    response = root.patch("/api/v1/users/second", json={"role": "member"}, headers=csrf(root))
    assert response.status_code == 403

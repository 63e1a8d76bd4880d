"""Tenants through the API and the CLI (issue 16): each with its own interface from the
tenant pool and port range, usage, plan and DNS policy, disable, enable, delete."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from wirewarden.cli.main import app as cli_app
from wirewarden.cli.plans import plan_app
from wirewarden.cli.tenants import tenant_app
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.state import PeerStats

TENANTS = "/api/v1/tenants"
SMALL = {"max_peers": 5, "rate_down_kbit": 8000}


@pytest.fixture
def small(client: TestClient) -> str:
    assert client.put("/api/v1/plans/small", json=SMALL).status_code == 201
    return "small"


def test_create_gives_each_tenant_its_own_network_and_port(
    client: TestClient, dataplane: FakeDataplane, small: str
) -> None:
    acme = client.post(TENANTS, json={"name": "acme", "plan": small})
    assert acme.status_code == 201, acme.text
    beta = client.post(TENANTS, json={"name": "beta"}).json()
    (a,), (b,) = acme.json()["interfaces"], beta["interfaces"]
    assert (a["name"], a["address"], a["listen_port"]) == ("t-acme", "10.88.0.1/24", 52820)
    assert (b["name"], b["address"], b["listen_port"]) == ("t-beta", "10.88.1.1/24", 52821)
    assert acme.json()["plan"] == "small" and acme.json()["max_peers"] == 5
    # Applied before answering; and an ordinary interface still comes from its own pool.
    assert dataplane.devices["t-acme"].listen_port == 52820
    wg0 = client.post("/api/v1/interfaces", json={"name": "wg0"}).json()
    assert (wg0["address"], wg0["listen_port"]) == ("10.8.0.1/24", 51820)


def test_list_with_usage(client: TestClient, small: str) -> None:
    client.post(TENANTS, json={"name": "acme", "plan": small})
    assert client.post("/api/v1/interfaces/t-acme/peers", json={"name": "a"}).status_code == 201
    listed = {t["name"]: t for t in client.get(TENANTS).json()}
    assert set(listed) == {"default", "acme"}
    assert (listed["acme"]["peers"], listed["acme"]["max_peers"]) == (1, 5)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "acme", "plan": "nope"}, "plan"),
        ({"name": "acme", "dns_policy": "nope"}, "dns_policy"),
        ({"name": "a-name-too-long"}, "name"),
        # The port an existing interface holds: refused after the tenant row was written.
        ({"name": "acme", "listen_port": 51820}, "listen_port"),
    ],
)
def test_bad_input_leaves_nothing_behind(
    client: TestClient, dataplane: FakeDataplane, body: dict[str, Any], field: str
) -> None:
    assert client.post("/api/v1/interfaces", json={"name": "wg0"}).status_code == 201
    response = client.post(TENANTS, json=body)
    assert response.status_code in (409, 422), response.text
    assert response.json()["field"] == field
    assert client.get(f"{TENANTS}/{body['name']}").status_code == 404
    assert [t["name"] for t in client.get(TENANTS).json()] == ["default"]
    assert "t-acme" not in dataplane.devices


def test_duplicate_is_409(client: TestClient) -> None:
    assert client.post(TENANTS, json={"name": "acme"}).status_code == 201
    again = client.post(TENANTS, json={"name": "acme"})
    assert again.status_code == 409 and again.json()["field"] == "name"


def test_disable_cuts_peers_off_and_keeps_data(
    client: TestClient, dataplane: FakeDataplane
) -> None:
    client.post(TENANTS, json={"name": "acme"})
    client.post(TENANTS, json={"name": "beta"})
    peer = client.post("/api/v1/interfaces/t-acme/peers", json={"name": "a"}).json()
    client.post("/api/v1/interfaces/t-beta/peers", json={"name": "b"})
    off = client.patch(f"{TENANTS}/acme", json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert dataplane.devices["t-acme"].peers == {}
    assert len(dataplane.devices["t-beta"].peers) == 1  # the other tenant untouched
    assert client.get(f"/api/v1/peers/{peer['id']}").status_code == 200
    refused = client.post("/api/v1/interfaces/t-acme/peers", json={"name": "new"})
    assert refused.status_code == 409 and dataplane.devices["t-acme"].peers == {}
    # Changing a peer of the disabled tenant keeps it out of the kernel, rules included.
    elements, tc = dataplane.elements, dict(dataplane.tc)
    for change in ({"enabled": True}, {"rate_down_kbit": 5000, "name": "a2"}, {"mesh": True}):
        patched = client.patch(f"/api/v1/peers/{peer['id']}", json=change)
        assert patched.status_code == 200, patched.text
        assert dataplane.devices["t-acme"].peers == {}
    assert (dataplane.elements, dataplane.tc) == (elements, tc)
    assert client.patch(f"{TENANTS}/acme", json={"enabled": True}).status_code == 200
    assert list(dataplane.devices["t-acme"].peers) == [peer["public_key"]]


def test_change_plan_and_dns_policy(client: TestClient, small: str) -> None:
    client.post(TENANTS, json={"name": "acme"})
    peer = client.post("/api/v1/interfaces/t-acme/peers", json={"name": "a"}).json()
    client.patch(f"/api/v1/peers/{peer['id']}", json={"rate_down_kbit": 90_000})
    changed = client.patch(f"{TENANTS}/acme", json={"plan": small})
    assert changed.status_code == 200 and changed.json()["plan"] == small
    assert client.get(f"/api/v1/peers/{peer['id']}").json()["rate_down_kbit"] == 8000
    assert client.put("/api/v1/dns/policies/kids", json={}).status_code in (200, 201)
    assert (
        client.patch(f"{TENANTS}/acme", json={"dns_policy": "kids"}).json()["dns_policy"] == "kids"
    )
    bad = client.patch(f"{TENANTS}/acme", json={"plan": None, "dns_policy": "nope"})
    assert bad.status_code == 422 and bad.json()["field"] == "dns_policy"
    assert client.get(f"{TENANTS}/acme").json()["plan"] == small  # nothing half applied
    assert client.patch(f"{TENANTS}/acme", json={"plan": None}).json()["plan"] is None


def test_delete_removes_interface_peers_users_and_kernel_state(
    client: TestClient, dataplane: FakeDataplane, make_user: Any
) -> None:
    client.post(TENANTS, json={"name": "acme"})
    client.post(TENANTS, json={"name": "beta"})
    peer = client.post("/api/v1/interfaces/t-acme/peers", json={"name": "a"}).json()
    client.post("/api/v1/interfaces/t-beta/peers", json={"name": "b"})
    make_user("alice", role="tenant-admin", tenant="acme")
    assert client.delete(f"{TENANTS}/acme").status_code == 204
    assert client.get(f"{TENANTS}/acme").status_code == 404
    assert "t-acme" not in dataplane.devices
    assert client.get(f"/api/v1/peers/{peer['id']}").status_code == 404
    assert client.get("/api/v1/users/alice").status_code == 404
    assert len(dataplane.devices["t-beta"].peers) == 1
    refused = client.delete(f"{TENANTS}/default")
    assert refused.status_code == 409


def test_a_tenant_admin_sees_only_its_tenant(
    client: TestClient, make_user: Any, browser: Callable[..., TestClient]
) -> None:
    client.post(TENANTS, json={"name": "acme"})
    client.post(TENANTS, json={"name": "beta"})
    make_user("alice", role="tenant-admin", tenant="acme")
    alice = browser("alice")
    headers = {"X-CSRF-Token": alice.csrf}  # type: ignore[attr-defined]
    assert [t["name"] for t in alice.get(TENANTS).json()] == ["acme"]
    assert alice.get(f"{TENANTS}/acme").status_code == 200
    assert alice.get(f"{TENANTS}/beta").status_code == 404
    assert alice.patch(f"{TENANTS}/beta", json={"enabled": False}, headers=headers).status_code in (
        403,
        404,
    )
    assert alice.patch(f"{TENANTS}/acme", json={"plan": None}, headers=headers).status_code == 403
    assert alice.delete(f"{TENANTS}/beta", headers=headers).status_code in (403, 404)
    assert alice.post(TENANTS, json={"name": "evil"}, headers=headers).status_code == 403
    assert client.get(f"{TENANTS}/beta").json()["enabled"] is True


def test_cli_tenant_add_and_its_admin(cli_env: FakeDataplane) -> None:
    for name, group in (("plan", plan_app), ("tenant", tenant_app)):
        if not any(g.name == name for g in cli_app.registered_groups):
            cli_app.add_typer(group, name=name)
    run = CliRunner()
    assert run.invoke(cli_app, ["plan", "set", "small", "--max-peers", "5"]).exit_code == 0
    made = run.invoke(cli_app, ["tenant", "add", "acme", "--plan", "small"])
    assert made.exit_code == 0, made.output
    assert "t-acme" in cli_env.devices
    user = run.invoke(
        cli_app,
        ["user", "add", "alice", "--role", "tenant-admin", "--tenant", "acme", "--password-stdin"],
        input="a long enough passphrase\n",
    )
    assert user.exit_code == 0, user.output
    users = {
        u["name"]: u for u in json.loads(run.invoke(cli_app, ["user", "list", "--json"]).output)
    }
    assert users["alice"]["tenant"] == "acme" and users["alice"]["role"] == "tenant-admin"
    listed = json.loads(run.invoke(cli_app, ["tenant", "list", "--json"]).output)
    assert {t["name"]: t["plan"] for t in listed} == {"acme": "small", "default": None}
    assert run.invoke(cli_app, ["tenant", "rm", "acme", "--yes"]).exit_code == 0
    assert "t-acme" not in cli_env.devices


def test_dashboard_create_change_disable_delete(
    client: TestClient,
    make_user: Any,
    browser: Callable[..., TestClient],
    dataplane: FakeDataplane,
    small: str,
) -> None:
    make_user("root", role="admin")
    root = browser("root")
    csrf = root.csrf  # type: ignore[attr-defined]
    made = root.post(
        "/tenants", data={"csrf_token": csrf, "name": "acme", "plan": small}, follow_redirects=False
    )
    assert made.status_code == 303, made.text
    assert client.get(f"{TENANTS}/acme").json()["plan"] == small
    listing = root.get("/tenants")
    assert listing.status_code == 200 and "t-acme" in listing.text and "0 / 5" in listing.text
    bad = root.post("/tenants", data={"csrf_token": csrf, "name": "beta", "plan": "nope"})
    assert bad.status_code == 422 and "no plan named" in bad.text
    assert client.get(f"{TENANTS}/beta").status_code == 404
    off = root.post(
        "/tenants/acme", data={"csrf_token": csrf, "enabled": "0"}, follow_redirects=False
    )
    assert off.status_code == 303 and client.get(f"{TENANTS}/acme").json()["enabled"] is False
    confirm = root.get("/tenants/acme/delete")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    assert "t-acme" in dataplane.devices  # asking is not deleting
    gone = root.post("/tenants/acme/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert gone.status_code == 303 and client.get(f"{TENANTS}/acme").status_code == 404
    assert "t-acme" not in dataplane.devices


def test_dashboard_of_a_tenant_admin_shows_its_tenant_only(
    client: TestClient, make_user: Any, browser: Callable[..., TestClient]
) -> None:
    client.post(TENANTS, json={"name": "acme"})
    client.post(TENANTS, json={"name": "beta"})
    make_user("alice", role="tenant-admin", tenant="acme")
    alice = browser("alice")
    page = alice.get("/tenants")
    assert page.status_code == 200 and "t-acme" in page.text and "t-beta" not in page.text
    assert 'href="/plans"' not in page.text
    assert alice.get("/tenants/beta/delete").status_code == 404
    csrf = alice.csrf  # type: ignore[attr-defined]
    alice.post("/tenants/beta/delete", data={"csrf_token": csrf})
    alice.post("/tenants/beta", data={"csrf_token": csrf, "enabled": "0"})
    assert client.get(f"{TENANTS}/beta").json()["enabled"] is True


def test_a_tenant_admin_reads_its_tenants_audit_events_only(
    client: TestClient, make_user: Any, browser: Callable[..., TestClient]
) -> None:
    client.post(TENANTS, json={"name": "acme"})
    client.post(TENANTS, json={"name": "beta"})
    # The admin's changes in each tenant, and a sign-in of each tenant's admin.
    client.post("/api/v1/interfaces/t-acme/peers", json={"name": "acme-phone"})
    client.post("/api/v1/interfaces/t-beta/peers", json={"name": "beta-phone"})
    make_user("alice", role="tenant-admin", tenant="acme")
    make_user("bob", role="tenant-admin", tenant="beta")
    browser("bob")
    targets = {e["target"] for e in browser("alice").get("/api/v1/audit").json()["items"]}
    assert {"acme", "t-acme", "t-acme/acme-phone", "alice"} <= targets
    assert not any("beta" in t or t == "bob" for t in targets), targets
    # A deleted tenant's events stay for the admin, and no later tenant inherits them.
    assert client.delete(f"{TENANTS}/beta").status_code == 204
    client.post(TENANTS, json={"name": "gamma"})
    make_user("carol", role="tenant-admin", tenant="gamma")
    seen = {e["target"] for e in browser("carol").get("/api/v1/audit").json()["items"]}
    assert not any("beta" in t for t in seen), seen
    all_targets = {e["target"] for e in client.get("/api/v1/audit?limit=1000").json()["items"]}
    assert "t-beta/beta-phone" in all_targets


def test_traffic_this_period_and_top_peers_per_tenant(
    client: TestClient,
    container: Any,
    dataplane: FakeDataplane,
    make_user: Any,
    browser: Callable[..., TestClient],
) -> None:
    """The tenants list sums each tenant's peers' bytes; a tenant admin's top peers and
    traffic are its own."""
    peers = {}
    for tenant in ("acme", "beta"):
        client.post(TENANTS, json={"name": tenant})
        for n in (1, 2):
            made = client.post(f"/api/v1/interfaces/t-{tenant}/peers", json={"name": f"p{n}"})
            peers[(tenant, n)] = made.json()
    moved = {("acme", 1): (1000, 20_000), ("acme", 2): (500, 3000), ("beta", 1): (7, 9)}
    for (tenant, n), (rx, tx) in moved.items():
        key = (f"t-{tenant}", peers[(tenant, n)]["public_key"])
        dataplane.counters[key] = PeerStats("198.51.100.9:51000", int(time.time()), rx, tx)
    container.collector.collect()
    listed = {t["name"]: t["traffic_bytes"] for t in client.get(TENANTS).json()}
    assert listed == {"default": 0, "acme": 24_500, "beta": 16}
    make_user("alice", role="tenant-admin", tenant="acme")
    alice = browser("alice")
    page = alice.get("/tenants").text
    assert '<td data-label="Traffic this period">24.5 kB</td>' in page
    assert "16 B" not in page  # beta's
    top = alice.get("/api/v1/traffic/top").json()["items"]
    assert [(p["interface"], p["name"]) for p in top] == [("t-acme", "p1"), ("t-acme", "p2")]
    beta_peer = peers[("beta", 1)]["id"]
    assert alice.get(f"/api/v1/peers/{beta_peer}/traffic").status_code == 404
    assert alice.get("/api/v1/traffic/top?interface=t-beta").status_code == 404


def test_a_tenant_admin_cannot_make_users_in_another_tenant(
    client: TestClient, make_user: Any, browser: Callable[..., TestClient]
) -> None:
    client.post(TENANTS, json={"name": "acme"})
    client.post(TENANTS, json={"name": "beta"})
    make_user("alice", role="tenant-admin", tenant="acme")
    alice = browser("alice")
    headers = {"X-CSRF-Token": alice.csrf}  # type: ignore[attr-defined]
    body = {"name": "mallory", "tenant": "beta", "password": "a long enough passphrase"}
    refused = alice.post("/api/v1/users", json=body, headers=headers)
    # Read as a tenant that does not exist: the same answer as for a made-up name.
    made_up = alice.post("/api/v1/users", json={**body, "tenant": "nope"}, headers=headers)
    assert (refused.status_code, refused.json()["field"]) == (422, "tenant")
    assert str(refused.json()).replace("beta", "nope") == str(made_up.json())
    assert client.get("/api/v1/users/mallory").status_code == 404
    ok = alice.post("/api/v1/users", json={**body, "tenant": "acme"}, headers=headers)
    assert ok.status_code == 201 and ok.json()["tenant"] == "acme"


def test_tenant_and_plan_block_classes_for_all_their_peers(
    client: TestClient, dataplane: FakeDataplane, small: str
) -> None:
    from wirewarden.domain.classify.steering import mark_of

    def blocked(address: str) -> set[str]:
        ip = address.split("/")[0]
        marks = {e.key.split(" . ")[1] for e in dataplane.elements if e.set == "block4"
                 and e.key.startswith(f"{ip} ")}  # fmt: skip
        return {app for app in ("bittorrent", "ssh", "quic") if f"0x{mark_of(app):08x}" in marks}

    client.post(TENANTS, json={"name": "acme", "plan": small})
    client.post(TENANTS, json={"name": "beta"})
    a = client.post("/api/v1/interfaces/t-acme/peers", json={"name": "a"}).json()
    b = client.post("/api/v1/interfaces/t-beta/peers", json={"name": "b"}).json()
    got = client.patch(f"{TENANTS}/acme", json={"block_apps": ["ssh"]})
    assert got.status_code == 200 and got.json()["block_apps"] == ["ssh"], got.text
    assert (blocked(a["address"]), blocked(b["address"])) == ({"ssh"}, set())
    # The plan's classes add to the tenant's and the peer's own; other tenants untouched.
    assert client.put("/api/v1/plans/small", json={**SMALL, "block_apps": ["bittorrent"]}).json()[
        "block_apps"
    ] == ["bittorrent"]
    container = client.app.state.container  # type: ignore[attr-defined]
    container.reconciler.reconcile()
    assert (
        client.patch(f"/api/v1/peers/{a['id']}", json={"block_apps": ["quic"]}).status_code == 200
    )
    assert blocked(a["address"]) == {"bittorrent", "ssh", "quic"}
    assert blocked(b["address"]) == set()
    assert client.get(f"/api/v1/peers/{a['id']}").json()["block_apps"] == ["quic"]
    # Unknown classes are refused naming the field, and nothing changes.
    bad = client.patch(f"{TENANTS}/acme", json={"block_apps": ["napster"]})
    assert bad.status_code == 422 and "block_apps" in bad.text
    bad = client.put("/api/v1/plans/small", json={**SMALL, "block_apps": ["napster"]})
    assert bad.status_code == 422 and "block_apps" in bad.text
    client.patch(f"{TENANTS}/acme", json={"block_apps": []})
    client.put("/api/v1/plans/small", json=SMALL)
    container.reconciler.reconcile()
    assert blocked(a["address"]) == {"quic"}

"""Plans through the API, the CLI and the dashboard (issue 16): admins only, 422 naming
the field, a plan in use is not deleted, lowering a plan brings its tenants' peers down."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from wirewarden.bootstrap import Container
from wirewarden.cli.main import app as cli_app
from wirewarden.cli.plans import plan_app
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.store.tables import Interface, Plan, Tenant

PLANS = "/api/v1/plans"
SMALL = {"max_peers": 5, "rate_down_kbit": 8000, "rate_up_kbit": 2000, "data_cap_bytes": 10**9}


def test_put_get_list_delete(client: TestClient) -> None:
    created = client.put(f"{PLANS}/small", json=SMALL)
    assert created.status_code == 201, created.text
    assert created.json() | SMALL == created.json()
    assert created.json()["rate_total_down_kbit"] is None  # not given: unlimited
    replaced = client.put(f"{PLANS}/small", json={**SMALL, "expose_ports": "8000-8100, 9000"})
    assert replaced.status_code == 200
    assert client.get(f"{PLANS}/small").json()["expose_ports"] == "8000-8100,9000"
    assert [p["name"] for p in client.get(PLANS).json()] == ["small"]
    assert client.delete(f"{PLANS}/small").status_code == 204
    assert client.get(f"{PLANS}/small").status_code == 404
    assert client.get(PLANS).json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_peers": -1}, "max_peers"),
        ({"rate_down_kbit": 0}, "rate_down_kbit"),
        ({"expose_ports": "80-70"}, "expose_ports"),
        ({"expose_ports": "http"}, "expose_ports"),
        ({"max_peer": 3}, "max_peer"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.put(f"{PLANS}/small", json=body)
    assert response.status_code == 422
    assert field in response.text
    assert client.get(f"{PLANS}/small").status_code == 404  # nothing half made


def test_a_bad_name_is_422(client: TestClient) -> None:
    response = client.put(f"{PLANS}/Not%20OK", json={})
    assert response.status_code == 422 and response.json()["field"] == "name"


def _tenant_on(container: Container, client: TestClient, tenant: str, plan: str | None) -> None:
    with container.deps.sessions.begin() as db:
        plan_id = db.scalar(select(Plan.id).where(Plan.name == plan)) if plan else None
        row = Tenant(name=tenant, plan_id=plan_id)
        db.add(row)
        db.flush()
        iface = f"t-{tenant}"
        tenant_id = row.id
    address = {"acme": "10.88.0.1/24", "beta": "10.88.1.1/24"}[tenant]
    assert (
        client.post("/api/v1/interfaces", json={"name": iface, "address": address}).status_code
        == 201
    )
    with container.deps.sessions.begin() as db:
        db.execute(update(Interface).where(Interface.name == iface).values(tenant_id=tenant_id))


def _peer(client: TestClient, iface: str, name: str, **policy: Any) -> int:
    made = client.post(f"/api/v1/interfaces/{iface}/peers", json={"name": name})
    assert made.status_code == 201, made.text
    peer_id = int(made.json()["id"])
    if policy:
        assert client.patch(f"/api/v1/peers/{peer_id}", json=policy).status_code == 200
    return peer_id


def test_lowering_a_plan_brings_its_tenants_peers_down(
    client: TestClient, container: Container
) -> None:
    assert client.put(f"{PLANS}/small", json={}).status_code == 201
    _tenant_on(container, client, "acme", "small")
    _tenant_on(container, client, "beta", None)
    fast = _peer(client, "t-acme", "fast", rate_down_kbit=50_000, data_cap_bytes=5 * 10**9)
    slow = _peer(client, "t-acme", "slow", rate_down_kbit=500)
    free = _peer(client, "t-acme", "free")  # unlimited is above any ceiling
    other = _peer(client, "t-beta", "other", rate_down_kbit=50_000)

    lowered = client.put(f"{PLANS}/small", json={"rate_down_kbit": 1000, "data_cap_bytes": 10**9})
    assert lowered.status_code == 200

    def policy(peer: int) -> tuple[Any, Any]:
        body = client.get(f"/api/v1/peers/{peer}").json()
        return body["rate_down_kbit"], body["data_cap_bytes"]

    assert policy(fast) == (1000, 10**9)
    assert policy(slow) == (500, 10**9)
    assert policy(free) == (1000, 10**9)
    assert policy(other) == (50_000, None)  # another tenant's plan is not this one
    # What the kernel is given follows.
    kernel = {p.peer_id: p.rate_down_kbit for p in container.reconciler.source().policy.peers}
    assert kernel[fast] == 1000 and kernel[free] == 1000 and kernel[other] == 50_000
    events = client.get("/api/v1/audit", params={"action": "plan.lower_peers"}).json()["items"]
    assert len(events) == 1 and events[0]["target"] == "small"
    assert events[0]["detail"]["peers"] == 3


def test_a_plan_in_use_is_not_deleted(client: TestClient, container: Container) -> None:
    assert client.put(f"{PLANS}/small", json=SMALL).status_code == 201
    _tenant_on(container, client, "acme", "small")
    response = client.delete(f"{PLANS}/small")
    assert response.status_code == 409 and "acme" in response.json()["detail"]
    assert client.get(f"{PLANS}/small").status_code == 200


def test_only_admins_manage_plans(
    client: TestClient, make_user: Any, browser: Callable[..., TestClient]
) -> None:
    assert client.put(f"{PLANS}/small", json=SMALL).status_code == 201
    make_user("alice", role="tenant-admin", tenant="default")
    alice = browser("alice")
    headers = {"X-CSRF-Token": alice.csrf}  # type: ignore[attr-defined]
    assert alice.get(PLANS).status_code == 403
    assert alice.get(f"{PLANS}/small").status_code == 403
    raised = alice.put(f"{PLANS}/small", json={"max_peers": 1000}, headers=headers)
    assert raised.status_code == 403
    assert alice.delete(f"{PLANS}/small", headers=headers).status_code == 403
    assert client.get(f"{PLANS}/small").json()["max_peers"] == 5
    assert alice.get("/plans").status_code in (403, 404)


def test_dashboard_page(
    client: TestClient, make_user: Any, browser: Callable[..., TestClient]
) -> None:
    make_user("root", role="admin")
    root = browser("root")
    csrf = root.csrf  # type: ignore[attr-defined]
    made = root.post(
        "/plans/new",
        data={"csrf_token": csrf, "name": "small", "max_peers": "5", "rate_down_kbit": ""},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    assert client.get(f"{PLANS}/small").json()["max_peers"] == 5
    assert client.get(f"{PLANS}/small").json()["rate_down_kbit"] is None
    listing = root.get("/plans")
    assert listing.status_code == 200 and 'href="/plans/small"' in listing.text
    bad = root.post("/plans/small", data={"csrf_token": csrf, "max_peers": "-3"})
    assert bad.status_code == 422 and "max_peers" in bad.text
    # Blocked classes as a comma separated line: kept across an edit that shows them.
    form = {"csrf_token": csrf, "max_peers": "5", "block_apps": "ssh, bittorrent"}
    assert root.post("/plans/small", data=form, follow_redirects=False).status_code == 303
    assert client.get(f"{PLANS}/small").json()["block_apps"] == ["bittorrent", "ssh"]
    assert 'value="bittorrent, ssh"' in root.get("/plans/small").text
    bad = root.post("/plans/small", data={**form, "block_apps": "ssh, napster"})
    assert bad.status_code == 422 and "block_apps" in bad.text
    assert client.get(f"{PLANS}/small").json()["block_apps"] == ["bittorrent", "ssh"]
    gone = root.post("/plans/small/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert gone.status_code == 303
    assert client.get(f"{PLANS}/small").status_code == 404


def test_cli(cli_env: FakeDataplane) -> None:
    if not any(group.name == "plan" for group in cli_app.registered_groups):
        cli_app.add_typer(plan_app, name="plan")
    run = CliRunner()
    made = run.invoke(
        cli_app, ["plan", "set", "small", "--max-peers", "5", "--rate-down-kbit", "8000"]
    )
    assert made.exit_code == 0, made.output
    listed = run.invoke(cli_app, ["plan", "list", "--json"])
    assert '"max_peers": 5' in listed.output and '"rate_down_kbit": 8000' in listed.output
    blocked = run.invoke(cli_app, ["plan", "set", "small", "--block-apps", "ssh", "--json"])
    assert blocked.exit_code == 0 and '"block_apps": [\n    "ssh"\n  ]' in blocked.output
    bad = run.invoke(cli_app, ["plan", "set", "small", "--max-peers", "-1"])
    assert bad.exit_code != 0 and "max_peers" in bad.output
    assert run.invoke(cli_app, ["plan", "rm", "small"]).exit_code == 0
    assert run.invoke(cli_app, ["plan", "list", "--json"]).output.strip() == "[]"


def test_a_tenant_total_is_in_the_kernel_with_its_first_peer(
    client: TestClient, container: Container, dataplane: FakeDataplane
) -> None:
    from wirewarden.domain import tcplan

    total = {"rate_total_down_kbit": 8000}
    assert client.put(f"{PLANS}/small", json=total).status_code == 201
    _tenant_on(container, client, "acme", "small")
    _peer(client, "t-acme", "phone")  # no limit of its own
    # Applied with the peer (not left for the next pass): the tenant's parent and fallback.
    shape = dataplane.tc["t-acme"].down
    assert shape is not None and {tcplan.PARENT, tcplan.FALLBACK} <= set(shape.classes)
    assert shape.classes[tcplan.PARENT] == 8000 and shape.catch_all
    # Lifted: the next pass takes the tenant's classes away.
    assert client.put(f"{PLANS}/small", json={}).status_code == 200
    container.reconciler.reconcile()
    after = dataplane.tc.get("t-acme")
    assert after is None or after.down is None or not after.down.classes

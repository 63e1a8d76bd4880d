"""ACL profiles and DNS policies owned by a tenant (issue 20, "names scoped for tenants"):
the same name in two tenants and globally, each peer given its own tenant's, the kernel
and the resolver told them apart; names unique per (tenant, name) on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from wirewarden.bootstrap import Container
from wirewarden.store.dns import read_directory
from wirewarden.store.tables import AclProfile, DnsPolicy, Interface, Tenant

IFACES = "/api/v1/interfaces"
OFFICE_ONLY = [{"action": "allow", "cidr": "192.0.2.0/24"}]


def _tenant(container: Container, name: str) -> int:
    with container.deps.sessions.begin() as db:
        row = Tenant(name=name)
        db.add(row)
        db.flush()
        return row.id


def _interface_of(container: Container, client: TestClient, name: str, tenant: int) -> None:
    address = {"wg0": "10.8.0.1/24", "t-acme": "10.88.0.1/24", "t-beta": "10.88.1.1/24"}[name]
    assert client.post(IFACES, json={"name": name, "address": address}).status_code == 201
    with container.deps.sessions.begin() as db:
        db.execute(update(Interface).where(Interface.name == name).values(tenant_id=tenant))


def _peer(client: TestClient, iface: str, **policy: Any) -> dict[str, Any]:
    created = client.post(f"{IFACES}/{iface}/peers", json={"name": "laptop"})
    assert created.status_code == 201, created.text
    changed = client.patch(f"/api/v1/peers/{created.json()['id']}", json=policy)
    assert changed.status_code == 200, changed.text
    return dict(changed.json())


@pytest.fixture
def tenants(container: Container, client: TestClient) -> dict[str, int]:
    ids = {"acme": _tenant(container, "acme"), "beta": _tenant(container, "beta")}
    with container.deps.sessions() as db:
        default = db.scalar(select(Tenant.id).where(Tenant.name == "default"))
    assert default is not None
    _interface_of(container, client, "wg0", default)
    _interface_of(container, client, "t-acme", ids["acme"])
    _interface_of(container, client, "t-beta", ids["beta"])
    return ids


def test_each_peer_gets_its_own_tenants_profile(
    container: Container, client: TestClient, tenants: dict[str, int]
) -> None:
    assert client.put("/api/v1/acl-profiles/office", json={"rules": []}).status_code == 201
    with container.deps.sessions.begin() as db:
        db.add(AclProfile(tenant_id=tenants["acme"], name="office", rules=OFFICE_ONLY))
    for iface in ("wg0", "t-acme", "t-beta"):
        _peer(client, iface, acl="office")

    state = container.reconciler.source()
    acl = {p.interface: p.acl for p in state.policy.peers}
    assert acl == {"wg0": "office", "t-acme": "office.acme", "t-beta": "office"}
    profiles = {p.name: p for p in state.policy.profiles}
    assert set(profiles) == {"office", "office.acme"}
    assert profiles["office"].rules == ()
    assert len(profiles["office.acme"].rules) == 1


def test_a_tenants_profile_is_not_another_tenants(
    container: Container, client: TestClient, tenants: dict[str, int]
) -> None:
    with container.deps.sessions.begin() as db:
        db.add(AclProfile(tenant_id=tenants["acme"], name="office", rules=OFFICE_ONLY))
    created = client.post(f"{IFACES}/t-beta/peers", json={"name": "laptop"})
    refused = client.patch(f"/api/v1/peers/{created.json()['id']}", json={"acl": "office"})
    assert refused.status_code == 422
    assert refused.json()["field"] == "acl"
    # Nor does the admin's list of global profiles show it.
    names = [p["name"] for p in client.get("/api/v1/acl-profiles").json()]
    assert "office" not in names


def test_each_peer_resolves_its_own_tenants_dns_policy(
    container: Container, client: TestClient, tenants: dict[str, int]
) -> None:
    assert client.put("/api/v1/dns/policies/kids", json={"deny": ["a.example"]}).status_code in (
        200,
        201,
    )
    with container.deps.sessions.begin() as db:
        db.add(DnsPolicy(tenant_id=tenants["acme"], name="kids", deny=["b.example"]))
    peers = {iface: _peer(client, iface, dns_policy="kids") for iface in ("t-acme", "t-beta")}

    with container.deps.sessions() as db:
        directory = read_directory(db, container.settings.node_name)
    by_iface = {c.interface: c.policy for c in directory.clients.values()}
    assert by_iface == {"t-acme": "kids.acme", "t-beta": "kids"}
    assert directory.policies["kids.acme"].deny == ("b.example",)
    assert directory.policies["kids"].deny == ("a.example",)
    assert peers["t-acme"]["dns_policy"] == "kids"


@pytest.mark.parametrize("model", [AclProfile, DnsPolicy])
def test_names_are_unique_per_tenant_and_globally(
    container: Container, tenants: dict[str, int], model: type[AclProfile] | type[DnsPolicy]
) -> None:
    sessions = container.deps.sessions
    with sessions.begin() as db:  # the same name once globally and once in each tenant
        db.add_all(
            [model(name="same"), *(model(name="same", tenant_id=t) for t in tenants.values())]
        )
    for tenant in (None, tenants["acme"]):
        with pytest.raises(IntegrityError), sessions.begin() as db:
            db.add(model(name="same", tenant_id=tenant))
    with sessions() as db:
        assert len(db.scalars(select(model).where(model.name == "same")).all()) == 3


def test_a_tenants_names_go_with_it(container: Container, tenants: dict[str, int]) -> None:
    with container.deps.sessions.begin() as db:
        db.add(AclProfile(tenant_id=tenants["beta"], name="office", rules=[]))
        db.add(DnsPolicy(tenant_id=tenants["beta"], name="kids"))
        db.execute(
            update(Interface).where(Interface.name == "t-beta").values(tenant_id=tenants["acme"])
        )
    with container.deps.sessions.begin() as db:
        db.delete(db.get(Tenant, tenants["beta"]))
    with container.deps.sessions() as db:
        assert db.scalars(select(AclProfile.name)).all() == []
        assert db.scalars(select(DnsPolicy.name).where(DnsPolicy.tenant_id.isnot(None))).all() == []

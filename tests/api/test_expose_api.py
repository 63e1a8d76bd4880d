"""Expose through the tunnel API and the admin API, on SQLite and PostgreSQL.

The tunnel API is called as the kernel would hand it a connection: from a peer's tunnel
address to its interface's gateway (the ASGI scope's client and server), so the tests
are written as each peer's (or an attacker's) requests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from wirewarden.bootstrap import Container
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.exposure import Forward
from wirewarden.domain.firewall import ExposeCount, KernelCounts
from wirewarden.domain.vhost import NameZone, Route
from wirewarden.store.tables import ExposedPort
from wirewarden.web.changes import ChangeThread
from wirewarden.web.tunnel import socket_origin, tunnel_app

GATEWAY = "10.8.0.1"


@pytest.fixture
def peers(client: TestClient) -> dict[str, dict[str, object]]:
    assert (
        client.post(
            "/api/v1/interfaces", json={"name": "wg0", "address": "10.8.0.1/24"}
        ).status_code
        == 201
    )
    made = {}
    for name in ("alice", "bob"):
        response = client.post("/api/v1/interfaces/wg0/peers", json={"name": name})
        assert response.status_code == 201
        made[name] = response.json()
    return made


@pytest.fixture
def tunnel(container: Container) -> Iterator[object]:
    changes = ChangeThread()
    app = tunnel_app(container.mappings, changes, socket_origin(container.mappings.deps.node))
    opened: list[httpx.AsyncClient] = []

    def as_peer(source: str, gateway: str = GATEWAY) -> httpx.Client:
        transport = httpx.ASGITransport(app=app, client=(source, 40000))
        return _Sync(transport, f"http://{gateway}:7070")

    yield as_peer
    changes.close()
    del opened


class _Sync:
    """A synchronous face on an ASGI transport (the tunnel app's handlers are awaited)."""

    def __init__(self, transport: httpx.ASGITransport, base: str) -> None:
        self.transport, self.base = transport, base

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        import asyncio

        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url=self.base) as c:
                return await c.request(method, path, **kwargs)  # type: ignore[arg-type]

        return asyncio.run(go())

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)


def address(peer: dict[str, object]) -> str:
    return str(peer["address"]).split("/")[0].split(",")[0]


def forwards(container: Container) -> tuple[Forward, ...]:
    return container.reconciler.source().forwards


def revision(container: Container) -> int:
    return container.reconciler.source.revision()  # type: ignore[attr-defined,no-any-return]


def test_a_peer_publishes_an_allowed_port_and_it_reaches_the_kernel(
    client: TestClient, container: Container, peers: dict[str, dict[str, object]], tunnel: object
) -> None:
    alice = peers["alice"]
    patched = client.patch(f"/api/v1/peers/{alice['id']}", json={"expose_ports": "9000, 8000-8100"})
    assert patched.status_code == 200 and patched.json()["expose_ports"] == "8000-8100,9000"
    me = tunnel(address(alice))  # type: ignore[operator]
    assert me.get("/v1/whoami").json()["peer"] == "alice"
    made = me.post("/v1/mappings", json={"proto": "tcp", "remote_port": 8080, "local_port": 43210})
    assert made.status_code == 201, made.text
    assert made.json()["peer_id"] == alice["id"]
    udp = me.post("/v1/mappings", json={"proto": "udp", "remote_port": 9000, "local_port": 43211})
    assert udp.status_code == 201
    # A full-tunnel client sends its replies back through the tunnel: no SNAT.
    assert set(forwards(container)) == {
        Forward("tcp", 8080, address(alice), 43210, snat=False),
        Forward("udp", 9000, address(alice), 43211, snat=False),
    }
    # A split-tunnel one routes only the VPN: the server shows its gateway as the source.
    client.patch(f"/api/v1/peers/{alice['id']}", json={"allowed_ips": "10.8.0.0/24"})
    assert {f.snat for f in forwards(container)} == {True}
    listed = client.get("/api/v1/mappings").json()
    assert {(m["proto"], m["remote_port"], m["peer"]) for m in listed} == {
        ("tcp", 8080, "alice"),
        ("udp", 9000, "alice"),
    }
    # The heartbeat renews without a revision: the kernel holds the same forwards.
    before = revision(container)
    beat = me.post("/v1/heartbeat")
    assert beat.json()["renewed"] == 2 and revision(container) == before
    # Stopping the client removes its mappings at once.
    assert me.delete("/v1/mappings").json() == {"removed": 2}
    assert forwards(container) == () and client.get("/api/v1/mappings").json() == []


def test_refusals_name_the_field_and_leave_nothing(
    client: TestClient, container: Container, peers: dict[str, dict[str, object]], tunnel: object
) -> None:
    alice, bob = peers["alice"], peers["bob"]
    bad = client.patch(f"/api/v1/peers/{alice['id']}", json={"expose_ports": "80-70"})
    assert bad.status_code == 422 and "expose_ports" in bad.text
    client.patch(f"/api/v1/peers/{alice['id']}", json={"expose_ports": "8080"})
    client.patch(f"/api/v1/peers/{bob['id']}", json={"expose_ports": "8080,9090"})
    as_alice, as_bob = tunnel(address(alice)), tunnel(address(bob))  # type: ignore[operator]
    outside = as_alice.post("/v1/mappings", json={"remote_port": 9090, "local_port": 1})
    assert outside.status_code == 403 and outside.json()["field"] == "remote_port"
    assert (
        as_alice.post("/v1/mappings", json={"remote_port": 8080, "local_port": 1}).status_code
        == 201
    )
    taken = as_bob.post("/v1/mappings", json={"remote_port": 8080, "local_port": 2})
    assert taken.status_code == 409 and "another peer" in taken.json()["detail"]
    assert [f.address for f in forwards(container)] == [address(alice)]


def test_a_peer_cannot_act_for_another_whatever_its_body_says(
    client: TestClient, container: Container, peers: dict[str, dict[str, object]], tunnel: object
) -> None:
    """wg-rp's flaw: the client names its address in the body. Here nothing in the body
    names a peer: bob claiming alice's address gets no mapping to alice."""
    alice, bob = peers["alice"], peers["bob"]
    for peer in (alice, bob):
        client.patch(f"/api/v1/peers/{peer['id']}", json={"expose_ports": "1-65535"})
    as_bob = tunnel(address(bob))  # type: ignore[operator]
    for field in ("client_ip", "address", "peer_id", "peer", "source"):
        value = alice["id"] if field == "peer_id" else address(alice)
        body = {"remote_port": 8443, "local_port": 443, field: value}
        assert as_bob.post("/v1/mappings", json=body).status_code == 422
    assert forwards(container) == ()
    # From an address that is no peer of this gateway, nothing at all.
    stranger = tunnel("10.8.0.200")  # type: ignore[operator]
    assert (
        stranger.post("/v1/mappings", json={"remote_port": 8443, "local_port": 1}).status_code
        == 403
    )
    # A peer's address reaching another interface's gateway is not that peer there.
    elsewhere = tunnel(address(alice), gateway="10.9.0.1")  # type: ignore[operator]
    assert elsewhere.get("/v1/whoami").status_code == 403
    # bob removing alice's mapping by id: not his.
    as_alice = tunnel(address(alice))  # type: ignore[operator]
    made = as_alice.post("/v1/mappings", json={"remote_port": 8443, "local_port": 443}).json()
    assert as_bob.delete(f"/v1/mappings/{made['id']}").status_code == 404
    assert len(forwards(container)) == 1


def test_an_expired_lease_leaves_the_kernel_and_the_reaper_clears_it(
    client: TestClient, container: Container, peers: dict[str, dict[str, object]], tunnel: object
) -> None:
    alice = peers["alice"]
    client.patch(f"/api/v1/peers/{alice['id']}", json={"expose_ports": "8080"})
    as_alice = tunnel(address(alice))  # type: ignore[operator]
    made = as_alice.post("/v1/mappings", json={"remote_port": 8080, "local_port": 80}).json()
    assert len(forwards(container)) == 1
    # The state is read again when the first lease ends, whatever the revision says.
    reader = container.reconciler.source
    later = datetime.now(UTC) + timedelta(seconds=61)
    reader.clock = lambda: later  # type: ignore[attr-defined]
    assert forwards(container) == ()
    # The reaper takes the row away (its clock is the real one: the lease ended for it too).
    with container.deps.sessions.begin() as db:
        past = datetime.now(UTC) - timedelta(seconds=1)
        db.execute(update(ExposedPort).where(ExposedPort.id == made["id"]).values(expires_at=past))
    assert client.get("/api/v1/mappings").json() == []
    assert container.mappings.reap() == 1
    # A late heartbeat renews nothing: the client registers again.
    assert as_alice.post("/v1/heartbeat").json()["renewed"] == 0


def test_the_admin_removes_a_mapping(
    client: TestClient, container: Container, peers: dict[str, dict[str, object]], tunnel: object
) -> None:
    alice = peers["alice"]
    client.patch(f"/api/v1/peers/{alice['id']}", json={"expose_ports": "8080"})
    made = (
        tunnel(address(alice))
        .post(  # type: ignore[operator]
            "/v1/mappings", json={"remote_port": 8080, "local_port": 80}
        )
        .json()
    )
    assert client.delete(f"/api/v1/mappings/{made['id']}").status_code == 204
    assert client.delete(f"/api/v1/mappings/{made['id']}").status_code == 404
    assert forwards(container) == ()
    events = client.get("/api/v1/audit").json()
    actions = [e["action"] for e in (events["items"] if isinstance(events, dict) else events)]
    assert "mapping.delete" in actions and "mapping.register" in actions


def test_the_dashboard_allows_ports_shows_mappings_and_removes_one(
    container: Container, tunnel: object
) -> None:
    from tests.api.test_dashboard_pages import PASSWORD, sign_in
    from wirewarden.services.account_schemas import UserCreate
    from wirewarden.services.context import SYSTEM
    from wirewarden.services.schemas import InterfaceCreate, PeerCreate
    from wirewarden.web.app import create_app

    container.users.create(UserCreate(name="root", role="admin", password=PASSWORD), SYSTEM)
    container.interfaces.create(InterfaceCreate(name="wg0", address="10.8.0.1/24"), SYSTEM)
    peer = container.peers.create("wg0", PeerCreate(name="nas"), SYSTEM)
    with TestClient(create_app(container, run_loop=False)) as ui:
        ui.headers["x-csrf-token"] = sign_in(ui, "root")
        form = {"acl": "full", "cap_reset_day": "1", "expose_ports": "http"}
        bad = ui.post(f"/peers/{peer.id}/policy", data=form)
        assert bad.status_code == 422 and 'id="e-expose_ports"' in bad.text
        form["expose_ports"] = "8080, 9000-9010"
        assert (
            ui.post(f"/peers/{peer.id}/policy", data=form, follow_redirects=False).status_code
            == 303
        )
        page = ui.get(f"/peers/{peer.id}").text
        assert "8080,9000-9010" in page and "Published ports" not in page
        made = tunnel(address({"address": peer.address})).post(  # type: ignore[operator]
            "/v1/mappings", json={"remote_port": 9005, "local_port": 80}
        )
        assert made.status_code == 201
        page = ui.get(f"/peers/{peer.id}").text
        assert "Published ports" in page and "9005/tcp" in page
        # The admin's page of every mapping names the peer and the ports.
        listed = ui.get("/mappings").text
        row = listed.split(f'data-mapping="{made.json()["id"]}"')[1].split("</tr>")[0]
        assert ">nas</a>" in row and "9005/tcp" in row and ">80<" in row
        other = tunnel(address({"address": peer.address})).post(  # type: ignore[operator]
            "/v1/mappings", json={"remote_port": 9006, "local_port": 81}
        )
        gone = ui.post(f"/mappings/{other.json()['id']}/delete", data={"back": "/mappings"})
        assert gone.url.path == "/mappings" and "Port 9006/tcp no longer published." in gone.text
        assert "9006/tcp" not in gone.text.split("</h1>")[1].replace("Port 9006/tcp no", "")
        # A name shows as the address a visitor opens.
        container.mappings.names = NameZone("vpn.example.test")
        ui.post(f"/peers/{peer.id}/policy", data={**form, "expose_ports": "80,9000-9010"})
        name = tunnel(address({"address": peer.address})).post(  # type: ignore[operator]
            "/v1/names", json={"name": "blog", "local_port": 3000}
        )
        assert name.status_code == 201, name.text
        row = ui.get("/mappings").text.split(f'data-mapping="{name.json()["id"]}"')[1]
        assert 'href="http://blog.default.vpn.example.test"' in row.split("</tr>")[0]
        assert "blog.default.vpn.example.test</a> (http)" in ui.get(f"/peers/{peer.id}").text
        gone = ui.post(f"/mappings/{name.json()['id']}/delete", data={"back": "/mappings"})
        assert "blog.default.vpn.example.test no longer published." in gone.text
        assert container.mappings.routes() == {}
        removed = ui.post(f"/mappings/{made.json()['id']}/delete", follow_redirects=False)
        assert removed.status_code == 303
        after = ui.get(f"/peers/{peer.id}").text
        assert forwards(container) == () and "Published ports" not in after
        assert "Port 9005/tcp no longer published." in after  # the flash, once


def test_a_tenants_plan_caps_its_published_ports_and_mappings(
    client: TestClient, container: Container, tunnel: object
) -> None:
    plan = {"max_mappings": 1, "expose_ports": "8000-8100"}
    assert client.put("/api/v1/plans/small", json=plan).status_code in (200, 201)
    made = client.post("/api/v1/tenants", json={"name": "acme", "plan": "small"})
    assert made.status_code == 201, made.text
    iface = made.json()["interfaces"][0]
    gateway = iface["address"].split("/")[0]
    peer = client.post(f"/api/v1/interfaces/{iface['name']}/peers", json={"name": "nas"}).json()
    # An admin may allow more than the plan; the plan still bounds what is published.
    client.patch(f"/api/v1/peers/{peer['id']}", json={"expose_ports": "8000-9000"})
    nas = tunnel(address(peer), gateway=gateway)  # type: ignore[operator]
    outside = nas.post("/v1/mappings", json={"remote_port": 9000, "local_port": 80})
    assert outside.status_code == 403 and "plan" in outside.json()["detail"]
    assert nas.post("/v1/mappings", json={"remote_port": 8080, "local_port": 80}).status_code == 201
    full = nas.post("/v1/mappings", json={"remote_port": 8081, "local_port": 81})
    assert full.status_code == 409 and full.json()["field"] == "max_mappings"
    # The same port again from the same client (a restart within the lease) is not a second.
    again = nas.post("/v1/mappings", json={"remote_port": 8080, "local_port": 82})
    assert again.status_code == 201
    assert [f.local_port for f in forwards(container)] == [82]


@pytest.fixture
def names(container: Container) -> NameZone:
    zone = NameZone("vpn.example.test")
    container.mappings.names = zone
    return zone


def test_a_peer_publishes_a_name_under_its_tenant_and_the_front_routes_it(
    client: TestClient,
    container: Container,
    peers: dict[str, dict[str, object]],
    tunnel: object,
    names: NameZone,
) -> None:
    alice, bob = peers["alice"], peers["bob"]
    as_alice, as_bob = tunnel(address(alice)), tunnel(address(bob))  # type: ignore[operator]
    body = {"name": "Blog", "local_port": 43000}
    # No port 80 among its expose_ports: the name is refused, naming the field.
    refused = as_alice.post("/v1/names", json=body)
    assert refused.status_code == 403 and refused.json()["field"] == "name"
    assert "80" in refused.json()["detail"] and container.mappings.routes() == {}
    for peer in (alice, bob):
        client.patch(f"/api/v1/peers/{peer['id']}", json={"expose_ports": "80,443"})
    made = as_alice.post("/v1/names", json=body)
    assert made.status_code == 201, made.text
    out = made.json()
    assert out["hostname"] == "blog.default.vpn.example.test"
    assert out["url"] == "http://blog.default.vpn.example.test" and out["remote_port"] == 80
    tls = as_alice.post("/v1/names", json={"name": "*.shop", "local_port": 43001, "tls": True})
    assert tls.status_code == 201 and tls.json()["url"] == "https://*.shop.default.vpn.example.test"
    assert container.mappings.routes() == {
        "blog.default.vpn.example.test": Route(out["id"], address(alice), 43000, False),
        "*.shop.default.vpn.example.test": Route(tls.json()["id"], address(alice), 43001, True),
    }
    # Names are no kernel forwards, and hold no public port of their own.
    assert forwards(container) == ()
    # Another peer cannot take a live name; the admin sees both with their names.
    taken = as_bob.post("/v1/names", json={"name": "blog", "local_port": 1})
    assert taken.status_code == 409 and taken.json()["field"] == "name"
    listed = client.get("/api/v1/mappings").json()
    assert {m["hostname"] for m in listed} == {
        "blog.default.vpn.example.test",
        "*.shop.default.vpn.example.test",
    }
    # Renewed by the heartbeat, gone with the client.
    assert as_alice.post("/v1/heartbeat").json()["renewed"] == 2
    assert as_alice.delete("/v1/mappings").json() == {"removed": 2}
    assert container.mappings.routes() == {}
    assert as_bob.post("/v1/names", json={"name": "blog", "local_port": 1}).status_code == 201


def test_names_refused_with_the_field_and_never_outside_the_tenant(
    client: TestClient,
    container: Container,
    peers: dict[str, dict[str, object]],
    tunnel: object,
    names: NameZone,
) -> None:
    alice = peers["alice"]
    client.patch(f"/api/v1/peers/{alice['id']}", json={"expose_ports": "80"})
    me = tunnel(address(alice))  # type: ignore[operator]
    # A name that would climb out of the tenant's zone, or is no host name at all.
    for bad in ("blog.acme.vpn.example.test.", "a_b", "..", "*", "x" * 64, "a.b.c.d.e", ""):
        answer = me.post("/v1/names", json={"name": bad, "local_port": 1})
        if answer.status_code == 201:  # a legal name lands under the tenant, whatever it says
            assert answer.json()["hostname"].endswith(".default.vpn.example.test")
            assert bad != "*", "a bare wildcard would be the tenant's catch-all"
            continue
        assert answer.status_code == 422 and "name" in answer.text, (bad, answer.text)
    # A name naming a peer in its body is refused whole, as mappings are.
    body = {"name": "blog", "local_port": 1, "peer_id": alice["id"]}
    assert me.post("/v1/names", json=body).status_code == 422
    # A server publishing no names says so.
    container.mappings.names = None
    off = me.post("/v1/names", json={"name": "blog", "local_port": 1})
    assert off.status_code == 409 and "WIREWARDEN_EXPOSE_DOMAIN" in off.json()["detail"]


def test_a_plan_caps_names_like_mappings(
    client: TestClient, container: Container, tunnel: object, names: NameZone
) -> None:
    plan = {"max_mappings": 1, "expose_ports": "80"}
    assert client.put("/api/v1/plans/small", json=plan).status_code in (200, 201)
    made = client.post("/api/v1/tenants", json={"name": "acme", "plan": "small"}).json()
    iface = made["interfaces"][0]
    gateway = iface["address"].split("/")[0]
    peer = client.post(f"/api/v1/interfaces/{iface['name']}/peers", json={"name": "nas"}).json()
    client.patch(f"/api/v1/peers/{peer['id']}", json={"expose_ports": "80,443"})
    nas = tunnel(address(peer), gateway=gateway)  # type: ignore[operator]
    https = nas.post("/v1/names", json={"name": "shop", "local_port": 1, "tls": True})
    assert https.status_code == 403 and "plan" in https.json()["detail"]
    blog = nas.post("/v1/names", json={"name": "blog", "local_port": 1})
    assert blog.status_code == 201 and blog.json()["hostname"] == "blog.acme.vpn.example.test"
    full = nas.post("/v1/names", json={"name": "wiki", "local_port": 2})
    assert full.status_code == 409 and full.json()["field"] == "max_mappings"


def test_each_mapping_shows_the_traffic_its_node_counted(
    client: TestClient,
    container: Container,
    dataplane: FakeDataplane,
    peers: dict[str, dict[str, object]],
    tunnel: object,
    names: NameZone,
) -> None:
    alice, bob = peers["alice"], peers["bob"]
    client.patch(f"/api/v1/peers/{alice['id']}", json={"expose_ports": "80,8080"})
    me = tunnel(address(alice))  # type: ignore[operator]
    port = me.post("/v1/mappings", json={"remote_port": 8080, "local_port": 43210}).json()
    name = me.post("/v1/names", json={"name": "blog", "local_port": 43211}).json()
    # Counted by the kernel by the forward's target, both directions in one element; the
    # same port of another peer or protocol is another mapping's.
    dataplane.kernel_counts = KernelCounts(
        exposed=(
            ExposeCount("tcp", address(alice), 43210, 10, 5_000),
            ExposeCount("udp", address(alice), 43210, 1, 99),
            ExposeCount("tcp", address(bob), 43210, 1, 77),
        )
    )
    container.mappings.name_traffic = lambda: {name["id"]: 1_234}
    listed = {m["id"]: m["bytes"] for m in client.get("/api/v1/mappings").json()}
    assert listed == {port["id"]: 5_000, name["id"]: 1_234}


def test_a_mapping_is_in_the_kernel_when_its_registration_is_answered(
    client: TestClient,
    container: Container,
    dataplane: FakeDataplane,
    peers: dict[str, dict[str, object]],
    tunnel: object,
) -> None:
    """As a peer's change is: its elements in one transaction before the answer, not at
    the reconciler's next pass (no pass runs here)."""
    from wirewarden.domain.firewall import Element

    container.reconciler.reconcile()  # the table exists, as after serve's first pass
    alice = peers["alice"]
    client.patch(f"/api/v1/peers/{alice['id']}", json={"expose_ports": "8080,9000"})
    container.reconciler.reconcile()
    me = tunnel(address(alice))  # type: ignore[operator]
    passes = dataplane.calls.count("apply_firewall")
    made = me.post("/v1/mappings", json={"remote_port": 8080, "local_port": 4321})
    assert made.status_code == 201
    forward = Element("expose_tcp", "8080", f"{address(alice)} . 4321")
    snat = Element("expose_snat4", address(alice))  # a split-tunnel client: none here
    assert forward in dataplane.elements and snat not in dataplane.elements
    me.post("/v1/mappings", json={"proto": "udp", "remote_port": 9000, "local_port": 4322})
    assert Element("expose_udp", "9000", f"{address(alice)} . 4322") in dataplane.elements
    assert me.delete("/v1/mappings").json() == {"removed": 2}
    assert not {e for e in dataplane.elements if e.set.startswith("expose")}
    assert dataplane.calls.count("apply_firewall") == passes  # no whole table written


def test_registering_a_port_again_never_takes_a_name_on_it_away(
    client: TestClient,
    container: Container,
    peers: dict[str, dict[str, object]],
    tunnel: object,
    names: NameZone,
) -> None:
    """A name holds the front's port 80 in its row; a port mapping's registration takes
    back only the peer's earlier *port* row (here the host has no front on 80)."""
    alice = peers["alice"]
    client.patch(f"/api/v1/peers/{alice['id']}", json={"expose_ports": "80"})
    me = tunnel(address(alice))  # type: ignore[operator]
    name = me.post("/v1/names", json={"name": "blog", "local_port": 3000}).json()
    assert me.post("/v1/mappings", json={"remote_port": 80, "local_port": 81}).status_code == 201
    listed = {m["id"]: m for m in client.get("/api/v1/mappings").json()}
    assert name["id"] in listed and "blog.default.vpn.example.test" in container.mappings.routes()
    assert len(listed) == 2

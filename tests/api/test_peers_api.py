"""/api/v1/interfaces/{name}/peers and /api/v1/peers/{id}: allocation, configs, the data plane."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.keys import generate_keypair, public_key_of
from wirewarden.domain.state import PeerState
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import PeerCreate

IFACES = "/api/v1/interfaces"
PEERS = "/api/v1/peers"


def make_interface(client: TestClient, name: str = "wg0", **body: Any) -> dict[str, Any]:
    response = client.post(IFACES, json={"name": name, **body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def add_peer(client: TestClient, iface: str = "wg0", **body: Any) -> dict[str, Any]:
    response = client.post(f"{IFACES}/{iface}/peers", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def peer_list(client: TestClient, iface: str = "wg0") -> dict[str, Any]:
    response = client.get(f"{IFACES}/{iface}/peers")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def kernel_peers(dataplane: FakeDataplane, iface: str = "wg0") -> dict[str, PeerState]:
    return dataplane.devices[iface].peers


def config_lines(text: str) -> dict[str, str]:
    """`Key = value` lines of a wg-quick file (keys are unique within a client config)."""
    pairs = (line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    return {key: value for key, value in pairs}


def error_fields(response: Any) -> set[str]:
    return {str(e["loc"][-1]) for e in response.json()["detail"]}


@pytest.fixture
def wg0(client: TestClient) -> dict[str, Any]:
    return make_interface(client)


# ---- create, read


def test_create_applies_the_peer_before_answering(
    client: TestClient, dataplane: FakeDataplane, wg0: dict[str, Any]
) -> None:
    response = client.post(f"{IFACES}/wg0/peers", json={"name": "laptop"})
    assert response.status_code == 201
    peer = response.json()
    assert peer["interface"] == "wg0"
    assert peer["name"] == "laptop"
    assert peer["address"] == "10.8.0.2/32"
    assert peer["allowed_ips"] == "0.0.0.0/0, ::/0"
    assert peer["status"] == "applied"
    assert peer["has_private_key"] is True
    assert peer["enabled"] is True
    assert peer["expired"] is False
    kernel = kernel_peers(dataplane)[peer["public_key"]]
    assert kernel.allowed_ips == ("10.8.0.2/32",)
    assert kernel.preshared_key is not None
    assert client.get(f"{PEERS}/{peer['id']}").json()["public_key"] == peer["public_key"]


def test_concurrent_creates_all_succeed_with_distinct_addresses(
    container: Container, dataplane: FakeDataplane, wg0: dict[str, Any]
) -> None:
    # Several clients (API threads, the CLI) at once: none is refused for a taken address.
    def create(worker: int) -> list[str]:
        made = []
        for i in range(8):
            peer = container.peers.create("wg0", PeerCreate(name=f"w{worker}-{i}"), SYSTEM)
            made.append(peer.address)
        return made

    with ThreadPoolExecutor(6) as pool:
        addresses = [a for made in pool.map(create, range(6)) for a in made]
    assert len(set(addresses)) == 48
    assert len(kernel_peers(dataplane)) == 48


def test_addresses_are_allocated_in_order_and_gaps_reused(
    client: TestClient, wg0: dict[str, Any]
) -> None:
    peers = [add_peer(client, name=f"p{i}") for i in range(3)]
    assert [p["address"] for p in peers] == ["10.8.0.2/32", "10.8.0.3/32", "10.8.0.4/32"]
    assert client.delete(f"{PEERS}/{peers[1]['id']}").status_code == 204
    assert add_peer(client, name="p3")["address"] == "10.8.0.5/32"


def test_gap_is_used_once_the_top_is_taken(client: TestClient) -> None:
    make_interface(client, address="10.77.0.1/29")  # .2 to .6 for peers
    peers = [add_peer(client, name=f"p{i}") for i in range(5)]
    assert peers[-1]["address"] == "10.77.0.6/32"
    client.delete(f"{PEERS}/{peers[2]['id']}")
    assert add_peer(client, name="again")["address"] == "10.77.0.4/32"


def test_dual_stack_peer(client: TestClient, dataplane: FakeDataplane) -> None:
    make_interface(client, address="10.8.0.1/24, fd00:8::1/64")
    peer = add_peer(client, name="laptop")
    assert peer["address"] == "10.8.0.2/32, fd00:8::2/128"
    assert kernel_peers(dataplane)[peer["public_key"]].allowed_ips == (
        "10.8.0.2/32",
        "fd00:8::2/128",
    )


def test_explicit_address_is_honoured(
    client: TestClient, dataplane: FakeDataplane, wg0: dict[str, Any]
) -> None:
    peer = add_peer(client, name="server", address="10.8.0.50")
    assert peer["address"] == "10.8.0.50/32"
    assert kernel_peers(dataplane)[peer["public_key"]].allowed_ips == ("10.8.0.50/32",)
    # Allocation goes on above it.
    assert add_peer(client, name="next")["address"] == "10.8.0.51/32"


def test_routed_networks_reach_the_kernel_not_the_client(
    client: TestClient, dataplane: FakeDataplane, wg0: dict[str, Any]
) -> None:
    peer = add_peer(
        client,
        name="branch",
        routed_ips="192.168.50.0/24",
        allowed_ips=["10.8.0.0/24", "10.20.0.0/16"],
    )
    assert kernel_peers(dataplane)[peer["public_key"]].allowed_ips == (
        "10.8.0.2/32",
        "192.168.50.0/24",
    )
    config = client.get(f"{PEERS}/{peer['id']}/config").text
    assert config_lines(config)["AllowedIPs"] == "10.8.0.0/24, 10.20.0.0/16"


def test_list_pagination_and_name_filter(client: TestClient, wg0: dict[str, Any]) -> None:
    for name in ("phone", "laptop", "desk", "tablet", "laptop-2"):
        add_peer(client, name=name)
    page = client.get(f"{IFACES}/wg0/peers", params={"limit": 2, "offset": 1}).json()
    assert [p["name"] for p in page["items"]] == ["laptop", "laptop-2"]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    found = client.get(f"{IFACES}/wg0/peers", params={"q": "lap"}).json()
    assert [p["name"] for p in found["items"]] == ["laptop", "laptop-2"]
    assert found["total"] == 2
    assert client.get(f"{IFACES}/wg0/peers", params={"limit": 0}).status_code == 422
    assert client.get(IFACES + "/wg0").json()["peer_count"] == 5


def test_pages_by_cursor_walk_every_peer_once(client: TestClient, wg0: dict[str, Any]) -> None:
    names = ["desk", "laptop", "laptop-2", "phone", "tablet"]
    for name in names:
        add_peer(client, name=name)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = client.get(f"{IFACES}/wg0/peers", params=params).json()
        assert page["total"] == 5
        seen += [p["name"] for p in page["items"]]
        if page["next"] is None:
            break
        params = {"limit": 2, "after": page["next"]}
    assert seen == names
    # A peer added behind the cursor does not shift the next page (OFFSET would repeat one).
    first = client.get(f"{IFACES}/wg0/peers", params={"limit": 2}).json()
    add_peer(client, name="alpha")
    second = client.get(f"{IFACES}/wg0/peers", params={"limit": 2, "after": first["next"]})
    assert [p["name"] for p in second.json()["items"]] == ["laptop-2", "phone"]


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGEgY3Vyc29y=", "", "A" * 401])
def test_a_forged_cursor_is_422_naming_after(
    client: TestClient, wg0: dict[str, Any], cursor: str
) -> None:
    add_peer(client, name="laptop")
    response = client.get(f"{IFACES}/wg0/peers", params={"after": cursor})
    if cursor == "":
        # An empty cursor is no cursor: the first page.
        assert response.status_code == 200 and response.json()["items"][0]["name"] == "laptop"
        return
    assert response.status_code == 422, response.text
    assert error_fields(response) == {"after"}


def test_peers_are_per_interface(client: TestClient, wg0: dict[str, Any]) -> None:
    make_interface(client, "wg1")
    add_peer(client, "wg0", name="laptop")
    other = add_peer(client, "wg1", name="laptop")  # the same name on another interface
    assert other["address"] == "10.8.1.2/32"
    assert peer_list(client, "wg0")["total"] == 1
    assert peer_list(client, "wg1")["total"] == 1


# ---- client config and QR


def test_config_download(client: TestClient, dataplane: FakeDataplane, wg0: dict[str, Any]) -> None:
    peer = add_peer(client, name="laptop", persistent_keepalive=25)
    response = client.get(f"{PEERS}/{peer['id']}/config")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'filename="wg0-laptop.conf"' in response.headers["content-disposition"]
    text = response.text
    assert text.startswith("# laptop\n[Interface]\n")
    lines = config_lines(text)
    # The private key handed out belongs to the public key the server knows.
    assert public_key_of(lines["PrivateKey"]) == peer["public_key"]
    assert lines["Address"] == "10.8.0.2/32"
    assert lines["PublicKey"] == wg0["public_key"]
    assert lines["PresharedKey"] == kernel_peers(dataplane)[peer["public_key"]].preshared_key
    assert lines["Endpoint"] == "vpn.example.test:51820"
    assert lines["AllowedIPs"] == "0.0.0.0/0, ::/0"
    assert lines["PersistentKeepalive"] == "25"
    assert "DNS" not in lines
    assert "MTU" not in lines


def test_config_carries_interface_dns_mtu_and_endpoint(client: TestClient) -> None:
    make_interface(
        client, dns="10.8.0.1", mtu=1380, endpoint="203.0.113.5:443", address="10.8.0.1/24"
    )
    peer = add_peer(client, name="phone")
    lines = config_lines(client.get(f"{PEERS}/{peer['id']}/config").text)
    assert lines["DNS"] == "10.8.0.1"
    assert lines["MTU"] == "1380"
    assert lines["Endpoint"] == "203.0.113.5:443"
    assert "PersistentKeepalive" not in lines


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("vpn.example.org", "vpn.example.org:51820"),
        ("vpn.example.org:4500", "vpn.example.org:4500"),
        ("[2001:db8::1]", "[2001:db8::1]:51820"),
        ("[2001:db8::1]:4500", "[2001:db8::1]:4500"),
    ],
)
def test_endpoint_gets_the_listen_port_when_it_has_none(
    client: TestClient, endpoint: str, expected: str
) -> None:
    make_interface(client, endpoint=endpoint)
    peer = add_peer(client, name="phone")
    assert config_lines(client.get(f"{PEERS}/{peer['id']}/config").text)["Endpoint"] == expected


def test_qr_is_svg(client: TestClient, wg0: dict[str, Any]) -> None:
    peer = add_peer(client, name="phone")
    response = client.get(f"{PEERS}/{peer['id']}/qr")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.lstrip().startswith("<svg")
    assert "</svg>" in response.text


def test_own_public_key_means_no_config(
    client: TestClient, dataplane: FakeDataplane, wg0: dict[str, Any]
) -> None:
    own = generate_keypair().public_key
    peer = add_peer(client, name="byok", public_key=own)
    assert peer["public_key"] == own
    assert peer["has_private_key"] is False
    assert own in kernel_peers(dataplane)
    for path in ("config", "qr"):
        response = client.get(f"{PEERS}/{peer['id']}/{path}")
        assert response.status_code == 409
        assert "private key" in response.json()["detail"]


# ---- errors


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "bad name"}, 422, "name"),
        ({"name": "Laptop"}, 422, "name"),
        ({"name": "-x"}, 422, "name"),
        ({"name": "x" * 33}, 422, "name"),
        ({}, 422, "name"),
        ({"name": "p", "address": "10.9.0.5"}, 422, "address"),
        ({"name": "p", "address": "10.8.0.1"}, 422, "address"),
        ({"name": "p", "address": "10.8.0.0"}, 422, "address"),
        ({"name": "p", "address": "10.8.0.255"}, 422, "address"),
        ({"name": "p", "address": "10.8.0.0/24"}, 422, "address"),
        ({"name": "p", "address": "not-an-ip"}, 422, "address"),
        ({"name": "p", "address": "fd00:8::5"}, 422, "address"),
        ({"name": "p", "allowed_ips": "banana"}, 422, "allowed_ips"),
        ({"name": "p", "allowed_ips": "10.8.0.1/24"}, 422, "allowed_ips"),
        ({"name": "p", "allowed_ips": ""}, 422, "allowed_ips"),
        ({"name": "p", "routed_ips": "300.1.1.0/24"}, 422, "routed_ips"),
        ({"name": "p", "persistent_keepalive": -1}, 422, "persistent_keepalive"),
        ({"name": "p", "persistent_keepalive": 65536}, 422, "persistent_keepalive"),
        ({"name": "p", "public_key": "abc"}, 422, "public_key"),
        ({"name": "p", "public_key": "A" * 44}, 422, "public_key"),
        ({"name": "p", "expires_at": "next tuesday"}, 422, "expires_at"),
        ({"name": "p", "private_key": "x"}, 422, "private_key"),
        ({"name": "taken"}, 409, "name"),
        ({"name": "p", "address": "10.8.0.2"}, 409, "address"),
    ],
)
def test_bad_create_changes_nothing(
    client: TestClient,
    dataplane: FakeDataplane,
    wg0: dict[str, Any],
    body: dict[str, object],
    status: int,
    field: str,
) -> None:
    add_peer(client, name="taken")  # holds 10.8.0.2
    before = peer_list(client)
    kernel_before = dict(kernel_peers(dataplane))
    response = client.post(f"{IFACES}/wg0/peers", json=body)
    assert response.status_code == status, response.text
    if status == 422:
        assert field in error_fields(response)
    else:
        assert response.json()["field"] == field
    assert peer_list(client) == before
    assert kernel_peers(dataplane) == kernel_before


def test_duplicate_public_key_is_409(client: TestClient, wg0: dict[str, Any]) -> None:
    key = generate_keypair().public_key
    add_peer(client, name="one", public_key=key)
    response = client.post(f"{IFACES}/wg0/peers", json={"name": "two", "public_key": key})
    assert response.status_code == 409
    assert peer_list(client)["total"] == 1


def test_exhausted_pool_is_409(client: TestClient, dataplane: FakeDataplane) -> None:
    make_interface(client, address="10.77.0.1/30")
    only = add_peer(client, name="only")
    assert only["address"] == "10.77.0.2/32"
    response = client.post(f"{IFACES}/wg0/peers", json={"name": "more"})
    assert response.status_code == 409
    assert response.json()["field"] == "address"
    assert "10.77.0.0/30" in response.json()["detail"]
    assert peer_list(client)["total"] == 1
    assert list(kernel_peers(dataplane)) == [only["public_key"]]


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("patch", ""), ("delete", ""), ("get", "/config"), ("get", "/qr")],
)
def test_unknown_peer_is_404(
    client: TestClient, wg0: dict[str, Any], method: str, suffix: str
) -> None:
    kwargs: dict[str, Any] = {"json": {"name": "x"}} if method == "patch" else {}
    response = client.request(method, f"{PEERS}/9999{suffix}", **kwargs)
    assert response.status_code == 404
    assert "9999" in response.json()["detail"]


def test_non_numeric_peer_id_is_422(client: TestClient) -> None:
    response = client.get(f"{PEERS}/laptop")
    assert response.status_code == 422
    assert error_fields(response) == {"peer_id"}


# ---- update, delete


def test_patch_fields(client: TestClient, dataplane: FakeDataplane, wg0: dict[str, Any]) -> None:
    peer = add_peer(client, name="laptop")
    response = client.patch(
        f"{PEERS}/{peer['id']}",
        json={"name": "work-laptop", "persistent_keepalive": 15, "routed_ips": "10.99.0.0/24"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["persistent_keepalive"]) == ("work-laptop", 15)
    assert body["routed_ips"] == "10.99.0.0/24"
    assert body["status"] == "applied"
    assert kernel_peers(dataplane)[peer["public_key"]].allowed_ips == (
        "10.8.0.2/32",
        "10.99.0.0/24",
    )
    assert client.get(f"{PEERS}/{peer['id']}").json()["name"] == "work-laptop"
    lines = config_lines(client.get(f"{PEERS}/{peer['id']}/config").text)
    assert lines["PersistentKeepalive"] == "15"
    # null clears the keepalive.
    cleared = client.patch(f"{PEERS}/{peer['id']}", json={"persistent_keepalive": None}).json()
    assert cleared["persistent_keepalive"] is None


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"bogus": True}, 422, "bogus"),
        ({"public_key": generate_keypair().public_key}, 422, "public_key"),
        ({"address": "10.8.0.9"}, 422, "address"),
        ({"name": "Not Valid"}, 422, "name"),
        ({"name": ""}, 422, "name"),
        ({"allowed_ips": "nope"}, 422, "allowed_ips"),
        ({"allowed_ips": ""}, 422, "allowed_ips"),
        ({"allowed_ips": " , "}, 422, "allowed_ips"),
        ({"persistent_keepalive": 70000}, 422, "persistent_keepalive"),
        ({"name": "other"}, 409, "name"),
    ],
)
def test_bad_patch_changes_nothing(
    client: TestClient, wg0: dict[str, Any], body: dict[str, object], status: int, field: str
) -> None:
    peer = add_peer(client, name="laptop")
    add_peer(client, name="other")
    before = client.get(f"{PEERS}/{peer['id']}").json()
    response = client.patch(f"{PEERS}/{peer['id']}", json=body)
    assert response.status_code == status, response.text
    if status == 422:
        assert field in error_fields(response)
    else:
        assert response.json()["field"] == field
    assert client.get(f"{PEERS}/{peer['id']}").json() == before


def test_disable_and_enable(
    client: TestClient, dataplane: FakeDataplane, wg0: dict[str, Any]
) -> None:
    peer = add_peer(client, name="laptop")
    keep = add_peer(client, name="desk")
    body = client.patch(f"{PEERS}/{peer['id']}", json={"enabled": False}).json()
    assert body["enabled"] is False
    # Blocked, not removed: no AllowedIPs, so WireGuard passes none of its traffic, while
    # its session survives for an instant re-enable.
    assert kernel_peers(dataplane)[peer["public_key"]].allowed_ips == ()
    assert kernel_peers(dataplane)[keep["public_key"]].allowed_ips == ("10.8.0.3/32",)
    # A reconcile pass agrees: the disabled peer stays blocked.
    assert client.app.state.container.reconciler.reconcile().ok  # type: ignore[attr-defined]
    assert kernel_peers(dataplane)[peer["public_key"]].allowed_ips == ()
    client.patch(f"{PEERS}/{peer['id']}", json={"enabled": True})
    assert kernel_peers(dataplane)[peer["public_key"]].allowed_ips == ("10.8.0.2/32",)


def test_create_disabled(client: TestClient, dataplane: FakeDataplane, wg0: dict[str, Any]) -> None:
    peer = add_peer(client, name="later", enabled=False)
    assert peer["enabled"] is False
    assert kernel_peers(dataplane)[peer["public_key"]].allowed_ips == ()


def test_delete(client: TestClient, dataplane: FakeDataplane, wg0: dict[str, Any]) -> None:
    peer = add_peer(client, name="laptop")
    keep = add_peer(client, name="desk")
    response = client.delete(f"{PEERS}/{peer['id']}")
    assert response.status_code == 204
    assert peer["public_key"] not in kernel_peers(dataplane)
    assert keep["public_key"] in kernel_peers(dataplane)
    assert client.get(f"{PEERS}/{peer['id']}").status_code == 404
    assert client.delete(f"{PEERS}/{peer['id']}").status_code == 404
    assert [p["name"] for p in peer_list(client)["items"]] == ["desk"]
    # Its name and address are free again.
    assert add_peer(client, name="laptop", address="10.8.0.2")["address"] == "10.8.0.2/32"


# ---- a failing data plane, expiry, disabled interfaces


def test_failing_data_plane_still_creates_then_heals(
    client: TestClient, dataplane: FakeDataplane, container: Container, wg0: dict[str, Any]
) -> None:
    dataplane.fail_on = {"set_peers"}
    response = client.post(f"{IFACES}/wg0/peers", json={"name": "laptop"})
    assert response.status_code == 201
    peer = response.json()
    assert peer["status"] == "error"
    assert "set_peers" in peer["error"]
    assert peer["public_key"] not in kernel_peers(dataplane)
    # The database holds the peer, its address is taken and its config downloads.
    assert client.get(f"{PEERS}/{peer['id']}").json()["status"] == "error"
    assert peer_list(client)["total"] == 1
    assert add_peer(client, name="next")["address"] == "10.8.0.3/32"
    assert client.get(f"{PEERS}/{peer['id']}/config").status_code == 200
    dataplane.fail_on.clear()
    assert container.reconciler.reconcile().ok
    healed = client.get(f"{PEERS}/{peer['id']}").json()
    assert (healed["status"], healed["error"]) == ("applied", None)
    assert peer["public_key"] in kernel_peers(dataplane)


def test_failing_delete_is_finished_by_the_reconciler(
    client: TestClient, dataplane: FakeDataplane, container: Container, wg0: dict[str, Any]
) -> None:
    peer = add_peer(client, name="laptop")
    dataplane.fail_on = {"remove_peers"}
    assert client.delete(f"{PEERS}/{peer['id']}").status_code == 204
    assert client.get(f"{PEERS}/{peer['id']}").status_code == 404
    assert peer["public_key"] in kernel_peers(dataplane)  # a zombie, for now
    dataplane.fail_on.clear()
    assert container.reconciler.reconcile().ok
    assert peer["public_key"] not in kernel_peers(dataplane)


def test_a_pass_reads_the_database_as_of_its_look_at_the_kernel(
    client: TestClient, dataplane: FakeDataplane, container: Container, wg0: dict[str, Any]
) -> None:
    """A peer added while a pass reads the database (after it looked at the kernel) is not
    in the pass's picture at all, so the pass neither removes it as a zombie nor plans."""
    add_peer(client, name="first")
    source = container.reconciler.source
    with source.pinned() as pin:
        managed = pin.begin()
        late = add_peer(client, name="late")  # kernel and database, after the snapshot
        desired = pin.read()
    assert managed == {"wg0"}
    assert late["public_key"] not in desired.interfaces["wg0"].peers
    assert container.reconciler.reconcile().ok
    assert late["public_key"] in kernel_peers(dataplane)


def test_expired_peer_is_not_in_the_data_plane(
    client: TestClient, dataplane: FakeDataplane, container: Container, wg0: dict[str, Any]
) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    peer = add_peer(client, name="old", expires_at=past)
    assert peer["expired"] is True
    assert peer["public_key"] not in kernel_peers(dataplane)
    assert container.reconciler.reconcile().ok
    assert peer["public_key"] not in kernel_peers(dataplane)
    assert client.get(f"{PEERS}/{peer['id']}").json()["expired"] is True


def test_peer_expiring_between_passes_is_removed(
    client: TestClient, dataplane: FakeDataplane, container: Container, wg0: dict[str, Any]
) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    peer = add_peer(client, name="guest", expires_at=soon.isoformat())
    keep = add_peer(client, name="desk")
    assert peer["expired"] is False
    assert peer["public_key"] in kernel_peers(dataplane)
    assert container.reconciler.reconcile().ok
    # Two hours on, with no change in the database, the next pass drops the guest.
    source = container.reconciler.source
    source.clock = lambda: soon + timedelta(hours=1)  # type: ignore[attr-defined]
    assert container.reconciler.reconcile().ok
    assert peer["public_key"] not in kernel_peers(dataplane)
    assert keep["public_key"] in kernel_peers(dataplane)


def test_naive_expiry_is_taken_as_utc(client: TestClient, wg0: dict[str, Any]) -> None:
    peer = add_peer(client, name="guest", expires_at="2099-01-01T00:00:00")
    assert peer["expires_at"].startswith("2099-01-01T00:00:00")
    assert peer["expires_at"].endswith(("Z", "+00:00"))


def test_peers_of_a_disabled_interface(
    client: TestClient, dataplane: FakeDataplane, wg0: dict[str, Any]
) -> None:
    """While the interface is off, its peers can still be managed; they come up with it."""
    peer = add_peer(client, name="laptop")
    client.patch(f"{IFACES}/wg0", json={"enabled": False})
    assert "wg0" not in dataplane.devices
    renamed = client.patch(f"{PEERS}/{peer['id']}", json={"name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["status"] != "error"
    added = client.post(f"{IFACES}/wg0/peers", json={"name": "desk"})
    assert added.status_code == 201, added.text
    assert added.json()["status"] != "error"
    assert client.delete(f"{PEERS}/{peer['id']}").status_code == 204
    assert "wg0" not in dataplane.devices
    client.patch(f"{IFACES}/wg0", json={"enabled": True})
    assert set(kernel_peers(dataplane)) == {added.json()["public_key"]}


def test_peer_on_a_missing_device_is_marked_error(
    client: TestClient, dataplane: FakeDataplane, container: Container
) -> None:
    dataplane.fail_on = {"create_interface"}
    assert client.post(IFACES, json={"name": "wg0"}).json()["status"] == "error"
    response = client.post(f"{IFACES}/wg0/peers", json={"name": "laptop"})
    assert response.status_code == 201
    assert response.json()["status"] == "error"
    dataplane.fail_on.clear()
    assert container.reconciler.reconcile().ok
    assert response.json()["public_key"] in kernel_peers(dataplane)


def test_renumbered_interface_keeps_addresses_unique(
    client: TestClient, dataplane: FakeDataplane
) -> None:
    """Widening the network (10.8.1.0/24 -> 10.8.0.0/23) keeps peers and their addresses."""
    make_interface(client, address="10.8.1.1/24")
    first = add_peer(client, name="first")
    assert first["address"] == "10.8.1.2/32"
    response = client.patch(f"{IFACES}/wg0", json={"address": "10.8.0.1/23"})
    assert response.status_code == 200
    assert client.get(f"{PEERS}/{first['id']}").json()["address"] == "10.8.1.2/32"
    clash = client.post(f"{IFACES}/wg0/peers", json={"name": "clash", "address": "10.8.1.2"})
    assert clash.status_code == 409
    low = add_peer(client, name="low", address="10.8.0.2")
    assert low["address"] == "10.8.0.2/32"
    auto = add_peer(client, name="auto")
    assert auto["address"] == "10.8.1.3/32"
    addresses = [p["address"] for p in peer_list(client)["items"]]
    assert len(addresses) == len(set(addresses)) == 3


def test_patch_expiry_removes_and_restores(
    client: TestClient, dataplane: FakeDataplane, wg0: dict[str, Any]
) -> None:
    peer = add_peer(client, name="guest")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    body = client.patch(f"{PEERS}/{peer['id']}", json={"expires_at": past}).json()
    assert body["expired"] is True
    assert peer["public_key"] not in kernel_peers(dataplane)
    body = client.patch(f"{PEERS}/{peer['id']}", json={"expires_at": None}).json()
    assert (body["expired"], body["expires_at"]) == (False, None)
    assert peer["public_key"] in kernel_peers(dataplane)


def test_display_name_makes_the_slug_and_the_slug_still_works(
    client: TestClient, wg0: dict[str, Any]
) -> None:
    made = add_peer(client, display_name="Grandma's Tablet")
    assert (made["name"], made["display_name"]) == ("grandmas-tablet", "Grandma's Tablet")
    again = add_peer(client, display_name="Grandma\u2019s tablet")
    assert again["name"] == "grandmas-tablet-2"
    plain = add_peer(client, name="desk")  # slugs as before; shown as themselves
    assert plain["display_name"] == "desk"
    renamed = client.patch(f"{PEERS}/{plain['id']}", json={"display_name": "Büro PC"}).json()
    assert (renamed["name"], renamed["display_name"]) == ("desk", "Büro PC")
    bad = client.post(f"{IFACES}/wg0/peers", json={"display_name": "a\x07b"})
    assert bad.status_code == 422 and error_fields(bad) == {"display_name"}
    none = client.post(f"{IFACES}/wg0/peers", json={})
    assert none.status_code == 422 and "name" in error_fields(none)

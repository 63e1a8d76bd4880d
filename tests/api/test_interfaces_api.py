"""/api/v1/interfaces: what an API client sees, and what reaches the (fake) data plane."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.keys import public_key_of

API = "/api/v1/interfaces"


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post(API, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def names(client: TestClient) -> list[str]:
    response = client.get(API)
    assert response.status_code == 200
    return [i["name"] for i in response.json()["items"]]


def error_fields(response: Any) -> set[str]:
    """The fields a 422 names, whether FastAPI or a service raised it."""
    return {str(e["loc"][-1]) for e in response.json()["detail"]}


# ---- create, read


def test_create_with_defaults(client: TestClient, dataplane: FakeDataplane) -> None:
    body = create(client, name="wg0")
    assert body["name"] == "wg0"
    assert body["address"] == "10.8.0.1/24"
    assert body["listen_port"] == 51820
    assert body["mtu"] == 1420
    assert body["enabled"] is True
    assert body["status"] == "applied"
    assert body["error"] is None
    assert body["peer_count"] == 0
    dev = dataplane.devices["wg0"]
    assert dev.up
    assert dev.addresses == {"10.8.0.1/24"}
    assert dev.listen_port == 51820
    assert dev.private_key is not None
    assert public_key_of(dev.private_key) == body["public_key"]
    assert dataplane.forwarding
    assert dataplane.digest is not None


def test_second_interface_gets_the_next_network_and_port(client: TestClient) -> None:
    create(client, name="wg0")
    body = create(client, name="wg1")
    assert (body["address"], body["listen_port"]) == ("10.8.1.1/24", 51821)


def test_create_with_everything(client: TestClient, dataplane: FakeDataplane) -> None:
    body = create(
        client,
        name="office",
        address="10.20.30.0/24, fd00:20::/64",
        listen_port=443,
        endpoint="vpn.example.org",
        dns=["10.20.30.1", "1.1.1.1"],
        mtu=1380,
    )
    # A bare network gets its first host as the gateway.
    assert body["address"] == "10.20.30.1/24, fd00:20::1/64"
    assert body["listen_port"] == 443
    assert body["endpoint"] == "vpn.example.org"
    assert body["dns"] == "10.20.30.1, 1.1.1.1"
    assert body["mtu"] == 1380
    dev = dataplane.devices["office"]
    assert dev.addresses == {"10.20.30.1/24", "fd00:20::1/64"}
    assert dev.mtu == 1380


def test_get_and_list(client: TestClient) -> None:
    created = create(client, name="wg0")
    got = client.get(f"{API}/wg0")
    assert got.status_code == 200
    assert got.json() == created
    page = client.get(API).json()
    assert page == {"items": [created], "total": 1, "limit": 100, "offset": 0}


def test_pagination_and_name_filter(client: TestClient) -> None:
    for name in ("wg-e", "wg-b", "lab-a", "wg-d", "wg-c"):
        create(client, name=name)
    page = client.get(API, params={"limit": 2, "offset": 1}).json()
    assert [i["name"] for i in page["items"]] == ["wg-b", "wg-c"]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    last = client.get(API, params={"limit": 2, "offset": 4}).json()
    assert [i["name"] for i in last["items"]] == ["wg-e"]
    assert client.get(API, params={"offset": 10}).json()["items"] == []
    found = client.get(API, params={"name": "wg-"}).json()
    assert found["total"] == 4
    assert "lab-a" not in [i["name"] for i in found["items"]]
    # The filter is a plain substring: "_" and "%" are not wildcards.
    assert client.get(API, params={"name": "wg_"}).json()["total"] == 0
    assert client.get(API, params={"name": "%"}).json()["total"] == 0


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "many"}]
)
def test_bad_pagination_is_422(client: TestClient, params: dict[str, object]) -> None:
    response = client.get(API, params=params)
    assert response.status_code == 422
    assert error_fields(response) <= {"limit", "offset"}


def test_unknown_interface_is_404(client: TestClient) -> None:
    for response in (
        client.get(f"{API}/nope"),
        client.patch(f"{API}/nope", json={"mtu": 1400}),
        client.delete(f"{API}/nope"),
        client.get(f"{API}/nope/peers"),
        client.post(f"{API}/nope/peers", json={"name": "p"}),
        client.get(f"{API}/nope/config"),
    ):
        assert response.status_code == 404
        assert "nope" in response.json()["detail"]


def test_export_server_config(client: TestClient, dataplane: FakeDataplane) -> None:
    create(client, name="wg0")
    peer = client.post(f"{API}/wg0/peers", json={"name": "laptop"}).json()
    response = client.get(f"{API}/wg0/config")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert f"PrivateKey = {dataplane.devices['wg0'].private_key}" in text
    assert "ListenPort = 51820" in text
    assert "# Name = laptop" in text
    assert f"PublicKey = {peer['public_key']}" in text
    assert "AllowedIPs = 10.8.0.2/32" in text


# ---- validation


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "WG0"}, "name"),
        ({"name": "0wg"}, "name"),
        ({"name": "wg 0"}, "name"),
        ({"name": "a" * 16}, "name"),
        ({"name": ""}, "name"),
        ({"name": "wg0;reboot"}, "name"),
        ({}, "name"),
        ({"name": "wg0", "address": "banana"}, "address"),
        ({"name": "wg0", "address": "10.8.0.1"}, "address"),
        ({"name": "wg0", "address": "10.8.0.1/31"}, "address"),
        ({"name": "wg0", "address": "10.8.0.1/7"}, "address"),
        ({"name": "wg0", "address": "fd00::1/64"}, "address"),
        ({"name": "wg0", "address": "10.8.0.1/24, 10.9.0.1/24"}, "address"),
        ({"name": "wg0", "address": "10.8.0.1/16, fd00::1/120"}, "address"),
        ({"name": "wg0", "listen_port": 0}, "listen_port"),
        ({"name": "wg0", "listen_port": 65536}, "listen_port"),
        ({"name": "wg0", "listen_port": "http"}, "listen_port"),
        ({"name": "wg0", "mtu": 1279}, "mtu"),
        ({"name": "wg0", "mtu": 9001}, "mtu"),
        ({"name": "wg0", "dns": "dns.google"}, "dns"),
        ({"name": "wg0", "endpoint": "bad host!"}, "endpoint"),
        ({"name": "wg0", "endpoint": "vpn.example.org:0"}, "endpoint"),
        ({"name": "wg0", "endpoint": "vpn.example.org:99999"}, "endpoint"),
        ({"name": "wg0", "bogus": 1}, "bogus"),
    ],
)
def test_invalid_create_is_422_naming_the_field(
    client: TestClient, dataplane: FakeDataplane, body: dict[str, object], field: str
) -> None:
    response = client.post(API, json=body)
    assert response.status_code == 422, response.text
    assert field in error_fields(response)
    assert names(client) == []
    assert dataplane.devices == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "wg0"}, "name"),
        ({"name": "wg1", "listen_port": 51820}, "listen_port"),
        ({"name": "wg1", "address": "10.8.0.129/25"}, "address"),
        ({"name": "wg1", "address": "10.0.0.1/8"}, "address"),
    ],
)
def test_conflicts_are_409_and_change_nothing(
    client: TestClient, dataplane: FakeDataplane, body: dict[str, object], field: str
) -> None:
    create(client, name="wg0", address="10.8.0.1/24", listen_port=51820)
    before = client.get(API).json()
    calls = list(dataplane.calls)
    response = client.post(API, json=body)
    assert response.status_code == 409, response.text
    assert response.json()["field"] == field
    assert isinstance(response.json()["detail"], str)
    assert client.get(API).json() == before
    assert set(dataplane.devices) == {"wg0"}
    assert dataplane.calls == calls


def test_ipv6_networks_may_not_overlap_either(client: TestClient) -> None:
    create(client, name="wg0", address="10.8.0.1/24, fd00:8::1/64")
    response = client.post(API, json={"name": "wg1", "address": "10.9.0.1/24, fd00:8::1/64"})
    assert response.status_code == 409
    assert response.json()["field"] == "address"


# ---- update


def test_patch_settings_reach_the_data_plane(client: TestClient, dataplane: FakeDataplane) -> None:
    create(client, name="wg0")
    response = client.patch(
        f"{API}/wg0",
        json={"listen_port": 51999, "mtu": 1380, "address": "10.50.0.1/24", "dns": "10.50.0.1"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["listen_port"], body["mtu"], body["address"]) == (51999, 1380, "10.50.0.1/24")
    assert body["dns"] == "10.50.0.1"
    assert body["status"] == "applied"
    dev = dataplane.devices["wg0"]
    assert (dev.listen_port, dev.mtu, dev.addresses) == (51999, 1380, {"10.50.0.1/24"})
    assert client.get(f"{API}/wg0").json() == body


def test_patch_endpoint_set_and_cleared(client: TestClient) -> None:
    create(client, name="wg0")
    assert client.patch(f"{API}/wg0", json={"endpoint": "vpn.example.org:443"}).json()[
        "endpoint"
    ] == ("vpn.example.org:443")
    assert client.patch(f"{API}/wg0", json={"endpoint": None}).json()["endpoint"] is None


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "renamed"}, 422, "name"),
        ({"private_key": "x"}, 422, "private_key"),
        ({"mtu": 100}, 422, "mtu"),
        ({"listen_port": 70000}, 422, "listen_port"),
        ({"address": "nope"}, 422, "address"),
        ({"listen_port": 51821}, 409, "listen_port"),
        ({"address": "10.9.0.1/16"}, 409, "address"),
    ],
)
def test_bad_patch_changes_nothing(
    client: TestClient,
    dataplane: FakeDataplane,
    body: dict[str, object],
    status: int,
    field: str,
) -> None:
    create(client, name="wg0")
    create(client, name="wg1", address="10.9.0.1/24", listen_port=51821)
    before = client.get(API).json()
    response = client.patch(f"{API}/wg0", json=body)
    assert response.status_code == status, response.text
    if status == 422:
        assert field in error_fields(response)
    else:
        assert response.json()["field"] == field
    assert client.get(API).json() == before
    assert dataplane.devices["wg0"].listen_port == 51820


def test_patch_address_that_strands_peers_is_409(client: TestClient) -> None:
    create(client, name="wg0", address="10.8.0.1/24")
    client.post(f"{API}/wg0/peers", json={"name": "far", "address": "10.8.0.200"})
    response = client.patch(f"{API}/wg0", json={"address": "10.8.0.1/25"})
    assert response.status_code == 409
    assert response.json()["field"] == "address"
    assert client.get(f"{API}/wg0").json()["address"] == "10.8.0.1/24"


def test_disable_removes_the_device_and_enable_brings_it_back(
    client: TestClient, dataplane: FakeDataplane
) -> None:
    create(client, name="wg0")
    create(client, name="wg1")
    peer = client.post(f"{API}/wg0/peers", json={"name": "laptop"}).json()
    response = client.patch(f"{API}/wg0", json={"enabled": False})
    assert response.status_code == 200
    assert response.json()["enabled"] is False
    assert response.json()["status"] == "applied"  # torn down as asked, not "pending"
    assert "wg0" not in dataplane.devices
    assert "wg1" in dataplane.devices
    # The interface and its peers stay in the database.
    assert client.get(f"{API}/wg0").json()["peer_count"] == 1
    response = client.patch(f"{API}/wg0", json={"enabled": True})
    assert response.json()["enabled"] is True
    assert response.json()["status"] == "applied"
    assert peer["public_key"] in dataplane.devices["wg0"].peers


# ---- delete


def test_delete_removes_interface_and_peers(client: TestClient, dataplane: FakeDataplane) -> None:
    create(client, name="wg0")
    create(client, name="wg1")
    peer = client.post(f"{API}/wg0/peers", json={"name": "laptop"}).json()
    response = client.delete(f"{API}/wg0")
    assert response.status_code == 204
    assert response.content == b""
    assert "wg0" not in dataplane.devices
    assert client.get(f"{API}/wg0").status_code == 404
    assert client.get(f"/api/v1/peers/{peer['id']}").status_code == 404
    assert names(client) == ["wg1"]
    # The name, port and network are free again.
    again = create(client, name="wg0")
    assert again["listen_port"] == 51820
    assert again["address"] == "10.8.0.1/24"


def test_delete_last_interface_removes_the_firewall(
    client: TestClient, dataplane: FakeDataplane
) -> None:
    create(client, name="wg0")
    assert dataplane.digest is not None
    assert client.delete(f"{API}/wg0").status_code == 204
    assert dataplane.devices == {}
    # No interface left: our table goes rather than staying behind empty.
    assert dataplane.digest is None


def test_failing_data_plane_on_create_reports_error_then_heals(
    client: TestClient, dataplane: FakeDataplane, container: Any
) -> None:
    dataplane.fail_on = {"configure_device"}
    response = client.post(API, json={"name": "wg0"})
    assert response.status_code == 201
    assert response.json()["status"] == "error"
    assert "configure_device" in response.json()["error"]
    assert names(client) == ["wg0"]
    dataplane.fail_on.clear()
    assert container.reconciler.reconcile().ok
    body = client.get(f"{API}/wg0").json()
    assert (body["status"], body["error"]) == ("applied", None)
    assert dataplane.devices["wg0"].listen_port == 51820


def test_delete_refused_by_the_data_plane_is_503_and_keeps_the_interface(
    client: TestClient, dataplane: FakeDataplane
) -> None:
    create(client, name="wg0")
    dataplane.fail_on = {"remove_interface"}
    response = client.delete(f"{API}/wg0")
    assert response.status_code == 503
    assert "remove_interface" in response.json()["detail"]
    # Still managed, so a later delete (or the reconciler) can finish the job.
    assert names(client) == ["wg0"]
    assert "wg0" in dataplane.devices
    dataplane.fail_on.clear()
    assert client.delete(f"{API}/wg0").status_code == 204
    assert dataplane.devices == {}


def test_export_of_a_disabled_interface_is_409(client: TestClient) -> None:
    create(client, name="wg0")
    client.patch(f"{API}/wg0", json={"enabled": False})
    response = client.get(f"{API}/wg0/config")
    assert response.status_code == 409
    assert "disabled" in response.json()["detail"]


def test_a_pass_failing_on_one_interface_marks_it_and_its_peers_alone(
    client: TestClient, container: Any
) -> None:
    from wirewarden.reconciler.executor import Report
    from wirewarden.services.sync_status import SyncStatusWriter

    create(client, name="wg0")
    create(client, name="wg1")
    for iface in ("wg0", "wg1"):
        assert client.post(f"{API}/{iface}/peers", json={"name": "p"}).status_code == 201
    writer = SyncStatusWriter(container.deps.sessions, container.settings.node_name)
    desired = container.reconciler.desired()

    def status(iface: str) -> list[tuple[str, str | None]]:
        body = client.get(f"{API}/{iface}").json()
        peers = client.get(f"{API}/{iface}/peers").json()["items"]
        return [(body["status"], body["error"])] + [(p["status"], p["error"]) for p in peers]

    writer(desired, Report(errors={"wg1": "boom"}))
    assert status("wg0") == [("applied", None)] * 2
    assert status("wg1") == [("error", "boom")] * 2
    writer(desired, Report())
    assert status("wg1") == [("applied", None)] * 2

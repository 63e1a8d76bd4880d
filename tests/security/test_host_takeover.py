"""Host-address takeover (hardening #3): an interface may not take the host's loopback,
link-local, multicast or reserved space, a network of the host's own links, a UDP port
something on the host holds, or a name the kernel reserves."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.state import HostFootprint

# The host of the adversarial test: its uplink 192.168.77.0/24, default gateway .1.
HOST = HostFootprint(
    networks=("192.168.77.0/24", "172.30.5.0/24"),
    udp_ports=frozenset({53, 5353}),
    links=frozenset({"eth0", "lo"}),
)


@pytest.fixture
def dataplane() -> FakeDataplane:
    return FakeDataplane(host=HOST)


def create(client: TestClient, **body: Any) -> Any:
    return client.post("/api/v1/interfaces", json={"name": "wg9", **body})


def refused_on(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert field in str(response.json()), response.text


@pytest.mark.parametrize(
    "address",
    [
        "192.168.77.1/24",  # the default gateway of the host
        "192.168.0.1/16",  # a supernet of the uplink
        "172.30.5.9/30",  # inside a routed network
    ],
)
def test_interface_cannot_take_a_network_of_the_host(
    client: TestClient, dataplane: FakeDataplane, address: str
) -> None:
    refused_on(create(client, address=address), "address")
    # Nothing reached the data plane: no link, no address, the uplink untouched.
    assert "wg9" not in dataplane.devices
    assert client.get("/api/v1/interfaces/wg9").status_code == 404


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.9/8",
        "224.0.0.1/24",
        "0.0.0.1/8",
        "169.254.1.1/16",
        "240.0.0.1/24",
        "10.120.0.1/24, ::ffff:10.120.0.1/120",
        "10.120.0.1/24, ::1/120",
        "10.120.0.1/24, ff02::1/64",
        "10.120.0.1/24, fe80::1/64",
    ],
)
def test_interface_cannot_take_reserved_space(
    client: TestClient, dataplane: FakeDataplane, address: str
) -> None:
    refused_on(create(client, address=address), "address")
    assert "wg9" not in dataplane.devices


def test_interface_cannot_take_a_port_the_host_uses(
    client: TestClient, dataplane: FakeDataplane
) -> None:
    refused_on(create(client, listen_port=53, address="10.120.0.1/24"), "listen_port")
    assert create(client, address="10.120.0.1/24", listen_port=51999).status_code == 201
    refused_on(client.patch("/api/v1/interfaces/wg9", json={"listen_port": 5353}), "listen_port")
    assert dataplane.devices["wg9"].listen_port == 51999


def test_moving_an_interface_onto_the_host_network_is_refused(
    client: TestClient, dataplane: FakeDataplane
) -> None:
    assert create(client, address="10.120.0.1/24").status_code == 201
    refused_on(
        client.patch("/api/v1/interfaces/wg9", json={"address": "192.168.77.1/24"}), "address"
    )
    assert dataplane.devices["wg9"].addresses == {"10.120.0.1/24"}


@pytest.mark.parametrize("name", ["all", "default", "lo", "eth0"])
def test_interface_cannot_take_a_name_the_kernel_or_host_holds(
    client: TestClient, name: str
) -> None:
    response = client.post("/api/v1/interfaces", json={"name": name, "address": "10.120.0.1/24"})
    refused_on(response, "name")


def test_allocation_skips_the_host_networks_and_ports(
    client: TestClient, container: Container, dataplane: FakeDataplane
) -> None:
    dataplane.host = HostFootprint(networks=("10.8.0.0/23",), udp_ports=frozenset({51820, 51821}))
    body = client.post("/api/v1/interfaces", json={"name": "wg9"}).json()
    assert body["address"] == "10.8.2.1/24"
    assert body["listen_port"] == 51822


def test_reconciler_refuses_an_address_the_host_took_later(
    client: TestClient, container: Container, dataplane: FakeDataplane
) -> None:
    assert create(client, address="10.120.0.1/24").status_code == 201
    # The interface was stored while the host had no such network; its link went away
    # and the host's LAN now uses the same network: the reconciler must not take it.
    dataplane.devices.pop("wg9", None)
    dataplane.host = HostFootprint(networks=("10.120.0.0/16",))
    report = container.reconciler.reconcile()
    assert "wg9" not in dataplane.devices
    assert "10.120.0.0/16" in report.errors["wg9"]
    status = client.get("/api/v1/interfaces/wg9").json()
    assert status["status"] == "error" and "10.120.0.0/16" in status["error"]

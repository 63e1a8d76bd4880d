"""Interfaces and peers created at once from many clients: each gets its own subnet, port
and address, and none is refused with a 500 (the allocation is serialised by the database,
not by a host lock: a fleet has many hosts)."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container

CLIENTS = 20


def test_parallel_interface_creates_get_distinct_networks_and_ports(client: TestClient) -> None:
    def create(number: int) -> Any:
        return client.post("/api/v1/interfaces", json={"name": f"wg{number}"})

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(create, range(CLIENTS)))
    assert sorted(a.status_code for a in answers) == [201] * CLIENTS, [a.text for a in answers]
    made = client.get("/api/v1/interfaces", params={"limit": 100}).json()["items"]
    networks = [ipaddress.ip_interface(i["address"].split(",")[0]).network for i in made]
    assert len(made) == CLIENTS
    assert len(set(networks)) == CLIENTS
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1 :])
    assert len({i["listen_port"] for i in made}) == CLIENTS


def test_parallel_creates_through_the_service_never_share_a_subnet(container: Container) -> None:
    # The service alone, without the HTTP layer's thread pool in between: the race of two
    # `create` calls that both read "10.8.0.0/24 is free" before either committed.
    from wirewarden.services.context import SYSTEM
    from wirewarden.services.schemas import InterfaceCreate

    def create(number: int) -> str:
        return container.interfaces.create(InterfaceCreate(name=f"t{number}"), SYSTEM).address

    with ThreadPoolExecutor(8) as pool:
        addresses = list(pool.map(create, range(CLIENTS)))
    assert len(set(addresses)) == CLIENTS


def test_parallel_peer_creates_get_distinct_addresses(client: TestClient) -> None:
    assert client.post("/api/v1/interfaces", json={"name": "wg0"}).status_code == 201

    def create(number: int) -> Any:
        return client.post("/api/v1/interfaces/wg0/peers", json={"name": f"p{number}"})

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(create, range(CLIENTS * 2)))
    assert [a.status_code for a in answers] == [201] * (CLIENTS * 2)
    assert len({a.json()["address"] for a in answers}) == CLIENTS * 2

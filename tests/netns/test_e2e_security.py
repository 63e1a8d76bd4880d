"""Hardening regressions that need the real thing (the API-level ones are in
tests/security/): the attacker's request against `wirewarden serve`, then what
`wg-quick` and the kernel did."""

from __future__ import annotations

import json

import pytest

from tests.netns.product import Product
from tests.netns.test_e2e_core import open_tunnel
from tests.netns.topology import Topology, wait_until

pytestmark = pytest.mark.netns


def test_an_injected_hook_never_runs_on_a_client(
    topology: Topology,
    product: Product,
) -> None:
    marker = topology.workdir / "pwned"
    tunnel = open_tunnel(topology, product, address="10.67.0.1/24")
    attacks = {
        "endpoint": f"[::1]\n[Interface]\nPreUp = touch {marker} #",
        "dns": f"fe80::1%q\nPreUp = touch {marker.name} #",
    }
    answers = [
        product.request("PATCH", f"/interfaces/{tunnel.ifname}", {field: value})
        for field, value in attacks.items()
    ]
    peer = product.create_peer(tunnel.ifname, name="victim")
    config = product.peer_config(peer["id"])
    client = topology.add_client()
    # The victim's own underlay link reaches the server at its own address.
    config = config.replace(tunnel.client.server_ip, client.server_ip)
    client.wg_quick_up(config)
    assert not marker.exists()
    assert not (topology.workdir / marker.name).exists()
    assert [status for status, _ in answers] == [422, 422], answers
    wait_until(lambda: client.ping(tunnel.gateway, timeout=1), timeout=15, what="ping")


def test_an_interface_cannot_take_the_uplink_network_or_the_resolver_port(
    topology: Topology,
    product: Product,
) -> None:
    tunnel = open_tunnel(topology, product, address="10.68.0.1/24")
    routes_before = topology.server.run(["ip", "route", "show", "default"]).stdout
    # The uplink's network, with the default gateway's own address (203.0.113.1).
    status, body = product.request(
        "POST", "/interfaces", {"name": topology.unique_ifname("ww"), "address": "203.0.113.1/24"}
    )
    assert status == 422 and "address" in str(body), body

    # Port 53 is the resolver's on every gateway.
    def resolver_listens() -> bool:
        return bool(topology.server.run(["ss", "-Hlun", "sport = :53"]).stdout.strip())

    wait_until(resolver_listens, timeout=15, what="the resolver on port 53")
    status, body = product.request(
        "POST",
        "/interfaces",
        {"name": topology.unique_ifname("ww"), "address": "10.69.0.1/24", "listen_port": 53},
    )
    assert status == 422 and "listen_port" in str(body), body
    assert topology.server.run(["ip", "route", "show", "default"]).stdout == routes_before
    links = json.loads(topology.server.run(["ip", "-j", "address"]).stdout)
    locals_ = {a.get("local") for link in links for a in link.get("addr_info", [])}
    assert topology.inet_ip not in locals_  # the gateway's address was not taken
    # The tunnel and the uplink still carry traffic.
    assert tunnel.client.ping(tunnel.gateway, timeout=2)
    topology.server.run(["ping", "-c", "1", "-W", "2", topology.inet_ip])  # raises if lost

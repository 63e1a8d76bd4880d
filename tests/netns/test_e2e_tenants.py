"""Two tenants on one server, end to end: each tenant's client, brought up from its
exported config, reaches its own gateway and the internet, and nothing of the other
tenant (gateway or peers, by ping or TCP), whatever its ACL; deleting one tenant leaves
the other's tunnel undisturbed."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.netns.product import Product
from tests.netns.topology import Client, Topology, wait_until

# A TCP service on each client's tunnel address: what the other tenant must not reach.
LISTEN = """
import socket, sys
server = socket.create_server((sys.argv[1], 9100))
while True:
    server.accept()[0].sendall(b"hi")
"""


@dataclass
class Member:
    client: Client
    gateway: str
    address: str


def tenant(topology: Topology, product: Product, name: str) -> Member:
    client = topology.add_client()
    made = product.api("POST", "/tenants", {"name": name, "endpoint": client.server_ip}, expect=201)
    iface = made["interfaces"][0]
    peer = product.create_peer(iface["name"], name=f"{name}-laptop")
    client.wg_quick_up(product.peer_config(peer["id"]))
    gateway = iface["address"].split("/")[0]
    wait_until(lambda: client.ping(gateway, timeout=1), timeout=15, what=f"{name}'s gateway")
    address = peer["address"].split("/")[0]
    client.ns.popen([sys.executable, "-c", LISTEN, address])
    return Member(client, gateway, address)


def tcp(client: Client, host: str, port: int) -> bool:
    probe = f"import socket; socket.create_connection(('{host}', {port}), 2).recv(2)"
    try:
        return client.ns.run([sys.executable, "-c", probe], check=False, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def test_tenants_are_walled_off_from_each_other(topology: Topology, product: Product) -> None:
    acme, beta = tenant(topology, product, "acme"), tenant(topology, product, "beta")
    for me, other in ((acme, beta), (beta, acme)):
        assert me.client.http_get(f"http://{topology.inet_ip}/") == topology.inet_http_body
        assert tcp(me.client, me.address, 9100)  # its own service answers
        assert not me.client.ping(other.gateway, timeout=1)
        assert not me.client.ping(other.address, timeout=1)
        assert not tcp(me.client, other.address, 9100)
        # The other tenant's tunnel API (a gateway service) is walled off too.
        assert not tcp(me.client, other.gateway, 7070)
    # Not even with every peer on mesh and the full profile.
    for name in ("t-acme", "t-beta"):
        for peer in product.api("GET", f"/interfaces/{name}/peers")["items"]:
            product.api("PATCH", f"/peers/{peer['id']}", {"mesh": True, "acl": "full"})
    assert not acme.client.ping(beta.address, timeout=1)
    assert not tcp(beta.client, acme.address, 9100)

    # Deleting one tenant leaves the other's tunnel undisturbed: a ping running across the
    # delete loses nothing.
    log = topology.log_path("ping-across-delete.log")
    argv = ["ping", "-n", "-q", "-i", "0.05", "-c", "200", beta.gateway]
    ping = beta.client.ns.popen(argv, log_path=log)
    product.api("DELETE", "/tenants/acme", expect=204)
    assert ping.wait(timeout=60) == 0
    summary = Path(log).read_text()
    assert "200 received" in summary and " 0% packet loss" in summary, summary
    links = product.server.run(["ip", "-br", "link"]).stdout
    assert "t-acme" not in links and "t-beta" in links
    assert beta.client.http_get(f"http://{topology.inet_ip}/") == topology.inet_http_body

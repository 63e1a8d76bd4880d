"""Two tenants on one server, end to end: each tenant's client, brought up from its
exported config, reaches its own gateway and the internet, and nothing of the other
tenant (gateway or peers, by ping or TCP), whatever its ACL; deleting one tenant leaves
the other's tunnel undisturbed."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
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


def download_mbits(client: Client, topology: Topology, port: int, seconds: float = 4) -> float:
    for attempt in range(3):
        result = client.iperf3(topology.inet_ip, seconds=seconds, reverse=True, port=port)
        if "error" not in result:
            return float(result["end"]["sum_received"]["bits_per_second"]) / 1e6
        time.sleep(1 + attempt)
    raise AssertionError(f"iperf3 failed: {result['error']}")


def test_a_plan_s_total_caps_the_whole_tenant(topology: Topology, product: Product) -> None:
    """Two devices of one tenant downloading at once share the plan's total; lifted, each
    goes as fast as the tunnel does."""
    product.api("PUT", "/plans/small", {"rate_total_down_kbit": 8000}, expect=201)
    first = topology.add_client()
    made = product.api(
        "POST",
        "/tenants",
        {"name": "acme", "plan": "small", "endpoint": first.server_ip},
        expect=201,
    )
    iface = made["interfaces"][0]
    gateway = iface["address"].split("/")[0]
    second = topology.add_client()
    for n, client in enumerate((first, second)):
        peer = product.create_peer(iface["name"], name=f"device{n}")
        assert peer["rate_down_kbit"] is None  # no limit of its own: the total alone
        # Each client reaches the server by the address of its own link (same server).
        conf = product.peer_config(peer["id"])
        client.wg_quick_up(conf.replace(f"{first.server_ip}:", f"{client.server_ip}:"))
        wait_until(lambda c=client: c.ping(gateway, timeout=1), timeout=15, what="gateway")
    # A second iperf3 server: one serves one test at a time.
    topology.inet.popen(["iperf3", "-s", "-B", topology.inet_ip, "-p", "5202"])
    probe = f"import socket; socket.create_connection(('{topology.inet_ip}', 5202), 2).close()"
    wait_until(
        lambda: topology.inet.run([sys.executable, "-c", probe], check=False).returncode == 0,
        timeout=10,
        what="the second iperf3 server",
    )

    def together() -> tuple[float, float]:
        with ThreadPoolExecutor(2) as pool:
            a = pool.submit(download_mbits, first, topology, 5201)
            b = pool.submit(download_mbits, second, topology, 5202)
            return a.result(), b.result()

    # Shaped from the first transfer on: the first peer brought the tenant's classes.
    alone = download_mbits(first, topology, 5201)
    print(f"one device alone under the 8 Mbit/s total: {alone:.2f} Mbit/s")
    assert alone <= 8 * 1.15, alone
    a, b = together()
    print(f"tenant total 8 Mbit/s: {a:.2f} + {b:.2f} = {a + b:.2f} Mbit/s")
    assert a + b <= 8 * 1.15, (a, b)
    assert min(a, b) > 1  # both get a share, neither is starved
    product.api("PUT", "/plans/small", {})
    a, b = together()
    print(f"total lifted: {a:.2f} + {b:.2f} = {a + b:.2f} Mbit/s")
    assert a + b > 20, (a, b)

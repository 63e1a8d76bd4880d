"""End-to-end test of the DNS filtering resolver: `serve` in the server namespace, two peers
brought up from exported configs, a fake authoritative upstream and the blocklists served
over HTTP from the inet namespace. One topology for every check, to keep the run short.

The upstreams are the local Unbound `serve` starts (its root hints name the fake, which
also plays the root), then the fake itself as plain DNS."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.dnsfake import address_for, root_hints
from tests.netns.product import Product
from tests.netns.topology import Client, Topology, wait_until

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "10.71.0.1"
GATEWAY6 = "fd71::1"
HOSTS_LIST = "# hosts\n127.0.0.1 localhost\n0.0.0.0 ads.hosts.example\n0.0.0.0 junk!\n"
ADBLOCK_LIST = "! adblock\n||tracker.adblock.example^\n@@||ok.tracker.adblock.example^\n"


@dataclass
class Answer:
    status: str
    addresses: list[str]


def dig(client: Client, name: str, server: str = GATEWAY, *extra: str) -> Answer:
    argv = ["dig", "+tries=1", "+time=6", f"@{server}", name, *extra]
    out = client.ns.run(argv, check=False, timeout=15).stdout
    match = re.search(r"status: (\w+)", out)
    addresses = re.findall(r"^[^;\s]\S*\s+\d+\s+IN\s+(?:A|AAAA)\s+(\S+)$", out, re.MULTILINE)
    return Answer(match.group(1) if match else "NO ANSWER", addresses)


@dataclass
class Setup:
    topology: Topology
    product: Product
    kids: Client
    adult: Client
    kids_peer: dict[str, Any]
    upstream: subprocess.Popen[bytes]


def _serve_lists(topology: Topology) -> tuple[str, str]:
    docroot = topology.workdir / f"http-{topology.inet.name}"
    (docroot / "hosts.txt").write_text(HOSTS_LIST)
    (docroot / "adblock.txt").write_text(ADBLOCK_LIST)
    base = f"http://{topology.inet_ip}"
    return f"{base}/hosts.txt", f"{base}/adblock.txt"


def _start_upstream(topology: Topology) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "tests.dnsfake", topology.inet_ip, "53", "--root"]
    proc = topology.inet.popen(argv, log_path=topology.log_path("dnsfake.log"))
    topology.inet.wait_listening(topology.inet_ip, 53, running=lambda: proc.poll() is None)
    return proc


def _bring_up(
    client: Client, product: Product, ifname: str, name: str
) -> tuple[Client, dict[str, Any]]:
    peer = product.create_peer(ifname, name=name)
    config = product.peer_config(peer["id"])
    # One interface for both peers; each client dials the server on its own link.
    config = re.sub(r"Endpoint = [\d.]+:", f"Endpoint = {client.server_ip}:", config)
    client.wg_quick_up(config)
    wait_until(lambda: client.ping(GATEWAY, timeout=1), timeout=15, what=f"{name} tunnel")
    return client, peer


@pytest.fixture
def setup(topology: Topology) -> Iterator[Setup]:
    upstream = _start_upstream(topology)
    # A plain TCP service on the DoT port, to show it is the product that refuses it.
    dot = [sys.executable, "-m", "http.server", "853", "--bind", topology.inet_ip]
    topology.inet.popen(dot, log_path=topology.log_path("dot.log"))
    topology.inet.wait_listening(topology.inet_ip, 853)
    hosts_url, adblock_url = _serve_lists(topology)
    product = Product(topology)
    hints = topology.workdir / "root.hints"
    hints.write_text(root_hints(topology.inet_ip))
    product.env["WIREWARDEN_DNS_UPSTREAMS"] = f"unbound,udp://{topology.inet_ip}:53"
    product.env["WIREWARDEN_DNS_UNBOUND_ROOT_HINTS"] = str(hints)
    product.env["WIREWARDEN_DNS_UNBOUND_DNSSEC"] = "false"  # the fake root signs nothing
    product.env["PYTHONPATH"] = str(ROOT)
    try:
        product.start()
        default = {
            "deny": ["deny.example", "*.wild.example"],
            "blocklists": [hosts_url, adblock_url],
        }
        product.api("PUT", "/dns/policies/default", default)
        product.api(
            "PUT",
            "/dns/policies/kids",
            {"deny": ["games.example"], "block_answer": "null-ip"},
            expect=201,
        )
        first = topology.add_client()
        ifname = topology.unique_ifname("wd")
        address = f"{GATEWAY}/24,{GATEWAY6}/64"
        product.create_interface(name=ifname, address=address, endpoint=first.server_ip)
        kids, kids_peer = _bring_up(first, product, ifname, "kids")
        adult, _ = _bring_up(topology.add_client(), product, ifname, "adult")
        product.api("PATCH", f"/peers/{kids_peer['id']}", {"dns_policy": "kids"})
        wait_until(
            lambda: dig(adult, "deny.example").status == "NXDOMAIN",
            timeout=15,
            what="the resolver to answer on the gateway with the policy",
            interval=0.5,
        )
        yield Setup(topology, product, kids, adult, kids_peer, upstream)
    finally:
        product.close()


def test_dns_filtering_end_to_end(setup: Setup) -> None:
    adult, kids, topo = setup.adult, setup.kids, setup.topology
    started = time.monotonic()

    # Normal names resolve through the upstream (its answers depend on the name).
    answer = dig(adult, "www.normal.example")
    assert answer == Answer("NOERROR", [address_for("www.normal.example")[0]])
    assert dig(adult, "www.normal.example", GATEWAY, "AAAA").addresses == [
        address_for("www.normal.example")[1]
    ]

    # The gateway's IPv6 address answers too, over UDP and TCP.
    v6 = address_for("six.normal.example")[1]
    assert dig(adult, "six.normal.example", GATEWAY6, "AAAA").addresses == [v6]
    assert dig(adult, "six.normal.example", GATEWAY6, "AAAA", "+tcp").addresses == [v6]

    # Anti-bypass canaries and DDR.
    for canary in ("use-application-dns.net", "mask.icloud.com", "mask-h2.icloud.com"):
        assert dig(adult, canary).status == "NXDOMAIN", canary
    ddr = dig(adult, "_dns.resolver.arpa", GATEWAY, "SVCB")
    assert ddr == Answer("NOERROR", [])

    # Deny rules, wildcards, hosts and adblock entries block, subdomains included.
    for blocked in (
        "deny.example",
        "a.b.deny.example",
        "x.wild.example",
        "ads.hosts.example",
        "sub.ads.hosts.example",
        "tracker.adblock.example",
        "cdn.tracker.adblock.example",
    ):
        assert dig(adult, blocked).status == "NXDOMAIN", blocked
    assert dig(adult, "wild.example").status == "NOERROR"  # *. is subdomains only
    assert dig(adult, "ok.tracker.adblock.example").status == "NOERROR"  # @@ allow wins

    # Port 53 to any other address is hijacked to our resolver and still filtered.
    for elsewhere in (topo.inet_ip, "192.0.2.99", "2001:db8::99"):
        assert dig(adult, "deny.example", elsewhere).status == "NXDOMAIN", elsewhere
        assert dig(adult, "other.normal.example", elsewhere).status == "NOERROR", elsewhere
    assert dig(adult, "deny.example", topo.inet_ip, "+tcp").status == "NXDOMAIN"

    # DoT is refused from peers (the server itself reaches the same port).
    dot_url = f"http://{topo.inet_ip}:853/"
    assert adult.http_get(dot_url, timeout=3) is None
    assert (
        setup.product.server.run(
            ["curl", "-sS", "--max-time", "3", dot_url], check=False
        ).returncode
        == 0
    )

    # Two peers, two policies, one name (a policy change reaches the resolver within ~1 s).
    wait_until(
        lambda: dig(kids, "games.example") == Answer("NOERROR", ["0.0.0.0"]),
        timeout=10,
        what="the kids policy to answer games.example with 0.0.0.0",
        interval=0.3,
    )
    assert dig(adult, "games.example").addresses == [address_for("games.example")[0]]

    # The query log shows what the kids' peer asked, with the outcome.
    def logged() -> bool:
        page = setup.product.api("GET", f"/dns/queries?peer_id={setup.kids_peer['id']}")
        return any(i["name"] == "games.example" and i["status"] == "blocked" for i in page["items"])

    wait_until(logged, timeout=10, what="the query log to show the blocked query", interval=0.5)
    stats = setup.product.api("GET", "/dns/stats")
    assert stats["blocked"] > 0 and stats["queries"] > stats["blocked"]

    # The answers came by the local Unbound, the first upstream.
    local = setup.product.api("GET", "/dns/status")["upstreams"][0]
    assert local["upstream"] == "unbound://127.0.0.1:5335" and local["answered"] > 0, local

    # Upstream down: fail closed, SERVFAIL (never another resolver).
    setup.upstream.terminate()
    setup.upstream.wait(timeout=5)
    assert dig(adult, "fresh.normal.example").status == "SERVFAIL"
    assert dig(adult, "deny.example").status == "NXDOMAIN"  # blocking needs no upstream

    # serve stops its Unbound with it.
    setup.product.stop()
    conf = str(setup.product.data_dir.resolve() / "dns" / "unbound" / "unbound.conf")
    assert conf not in setup.product.server.run(["ps", "-eo", "args"]).stdout
    print(f"[e2e] dns checks: {time.monotonic() - started:.1f}s")

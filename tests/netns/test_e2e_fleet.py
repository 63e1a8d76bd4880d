"""A fleet end to end: the control plane (`serve` on PostgreSQL, https with a private
CA) in one namespace, a VPN node running `wirewarden agent` with real wireguard-go in
another, a client brought up from the exported config with wg-quick.

What a user sees: the node enrols and comes online; its peer's tunnel works; a change
made on a second control-plane replica (same database and master key, the agent linked
to the first) reaches the node; the control plane stopped, the tunnel loses nothing and
the agent keeps running; back, a disable reaches the node in a fraction of a second
(printed); the agent killed, the node goes offline (and the tunnel still works); the
agent started again drops no packet and catches up.
"""

from __future__ import annotations

import base64
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.netns.product import WIREWARDEN, Product
from tests.netns.test_e2e_expose import (
    HTTP_PORT,
    PUBLIC_TCP,
    PUBLIC_UDP,
    TLS_PORT,
    TLS_SERVICE,
    UDP_PORT,
    from_inet,
    mappings,
    published,
    services,
)
from tests.netns.topology import Client, Netns, Topology, wait_until
from tests.tlsca import Issued, issue

CP_LISTEN = f"{Topology.inet_ip}:8443"
REPLICA_LISTEN = f"{Topology.lan_host_ip}:8443"
LISTEN_PORT = 51900
GATEWAY = "10.71.0.1"


@dataclass
class AgentProcess:
    topology: Topology
    data: Path
    env: dict[str, str]
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    netns: Netns | None = None  # the server namespace unless said
    name: str = "agent"

    @property
    def log_path(self) -> str:
        return self.topology.log_path(f"{self.name}.log")

    def log(self) -> str:
        path = Path(self.log_path)
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        netns = self.netns or self.topology.server
        self.proc = netns.popen(self.argv, env=self.env, log_path=self.log_path)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        proc, self.proc = self.proc, None
        assert proc is not None
        proc.send_signal(sig)
        return proc.wait(timeout=20)


@pytest.fixture
def tls(topology: Topology) -> Issued:
    return issue(topology.workdir / "tls", [Topology.inet_ip, Topology.lan_host_ip])


def _plane_env(tls: Issued, database: str) -> dict[str, str]:
    return {
        "WIREWARDEN_DATABASE_URL": database,
        "WIREWARDEN_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "WIREWARDEN_TLS_CERT": str(tls.cert),
        "WIREWARDEN_TLS_KEY": str(tls.key),
        "WIREWARDEN_NODE_NAME": "cp",
        "WIREWARDEN_DNS_ENABLED": "false",
    }


def _control(topology: Topology, tls: Issued, env: dict[str, str]) -> Product:
    return Product(
        topology, netns=topology.inet, listen=CP_LISTEN, cacert=tls.ca, env=env, name="cp"
    )


@pytest.fixture
def replicas(topology: Topology, tls: Issued, pg_database: str) -> Iterator[list[Product]]:
    """Two `serve` replicas on one database with one master key: stateless, either one
    serves any agent and any admin."""
    env = _plane_env(tls, pg_database)
    planes = [
        _control(topology, tls, env),
        Product(
            topology, netns=topology.lan, listen=REPLICA_LISTEN, cacert=tls.ca, env=env, name="cp2"
        ),
    ]
    try:
        for plane in planes:
            plane.start(timeout=30)
        yield planes
    finally:
        for plane in planes:
            plane.close()


def _received(client: Client, ip: str, count: int) -> tuple[int, int]:
    """(sent, received) of `count` pings 0.2 s apart."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "1", ip]
    out = client.ns.run(argv, check=False, timeout=count * 0.2 + 10).stdout
    found = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert found, out
    return int(found.group(1)), int(found.group(2))


def _node(control: Product) -> dict[str, object]:
    found: dict[str, object] = control.api("GET", "/nodes/n1")
    return found


def _agent(
    topology: Topology,
    tls: Issued,
    join: str,
    netns: Netns | None = None,
    name: str = "agent",
    server: str = CP_LISTEN,
) -> AgentProcess:
    data = topology.workdir / f"{name}-data"
    return AgentProcess(
        topology,
        data,
        {
            "WIREWARDEN_DATA_DIR": str(data),
            "WIREWARDEN_AGENT_JOIN_TOKEN": join,
            "WIREWARDEN_WG_IMPLEMENTATION": "wireguard-go",
            "WIREWARDEN_RECONCILE_PERIOD": "1",
            "WIREWARDEN_DNS_ENABLED": "false",
            "WIREWARDEN_LOG_LEVEL": "info",
            "WIREWARDEN_METRICS_PERIOD": "2",  # the report period
        },
        [WIREWARDEN, "agent", "--server", f"https://{server}", "--ca-file", str(tls.ca)],
        netns=netns,
        name=name,
    )


def _node_with_a_peer(
    topology: Topology, control: Product, tls: Issued, peer: str, region: str | None = None
) -> tuple[Client, str, dict[str, Any], AgentProcess]:
    """Node n1 with an interface and one peer for a new client, and its agent (not yet
    started): (client, interface, peer, agent)."""
    client = topology.add_client()
    place = {"name": "n1", **({"region": region} if region else {})}
    join = control.api("POST", "/nodes", place, expect=201)["join_token"]
    ifname = topology.unique_ifname("wg")
    control.create_interface(
        name=ifname,
        node="n1",
        address=f"{GATEWAY}/24",
        listen_port=LISTEN_PORT,
        endpoint=f"{client.server_ip}:{LISTEN_PORT}",
    )
    made = control.create_peer(ifname, name=peer)
    return client, ifname, made, _agent(topology, tls, join)


def _node_applied(control: Product) -> bool:
    node = _node(control)
    return node["status"] == "online" and node["applied_revision"] == node["revision"]


def test_a_node_runs_its_tunnels_through_control_plane_outages_and_agent_restarts(
    topology: Topology, replicas: list[Product], tls: Issued
) -> None:
    control, other = replicas
    client, ifname, peer, agent = _node_with_a_peer(topology, control, tls, "phone", "eu")
    agent.start()
    try:
        wait_until(
            lambda: _node_applied(control),
            timeout=30,
            what=f"the node to come online and ack its state:\n{agent.log()}",
        )
        # The tunnel, from the config the control plane exports, through the node.
        client.wg_quick_up(control.peer_config(peer["id"]))
        assert client.ping(GATEWAY, count=3), agent.log()
        assert client.http_get(f"http://{Topology.inet_ip}/") == Topology.inet_http_body
        # The control plane's own namespace got no WireGuard device of the node's.
        assert ifname not in control.server.run(["ip", "-br", "link"]).stdout

        # A change made on the other replica reaches the node through the first one.
        made = other.create_peer(ifname, name="tablet")
        wait_until(
            lambda: made["public_key"] in wg_peers(topology, ifname),
            timeout=10,
            what="a change made on the other replica to reach the node",
        )
        # Classified on the node (ssh blocked there, so its classifier runs) and counted
        # into the control plane's store through the agent's reports.
        control.api("PATCH", f"/peers/{peer['id']}", {"block_apps": ["ssh"]})
        since = "since=2020-01-01T00:00:00Z"

        def classes() -> dict[str, int]:
            assert client.http_get(f"http://{Topology.inet_ip}/") == Topology.inet_http_body
            shown = control.api("GET", f"/peers/{peer['id']}/apps?{since}")
            return {c["app"]: c["bytes"] for c in shown["classes"]}

        wait_until(
            lambda: classes().get("http", 0) > 200,
            timeout=60,
            interval=2,
            what=f"the node's classified HTTP in the control plane's store:\n{agent.log()}",
        )
        control.api("PATCH", f"/peers/{peer['id']}", {"block_apps": []})
        other.stop()

        # The control plane away: every ping answered, the agent still running.
        control.stop()
        sent, got = _received(client, GATEWAY, 20)
        assert got == sent and agent.running(), agent.log()

        # Back: a disable reaches the node within a couple of seconds.
        control.start(timeout=30)
        # (The node still shows online from its last heartbeat: wait for the link itself.)
        wait_until(
            lambda: agent.log().count("connected to the control plane") >= 2,
            timeout=90,
            what=f"the agent to dial the control plane again:\n{agent.log()}",
        )
        started = time.monotonic()
        control.api("PATCH", f"/peers/{peer['id']}", {"enabled": False})
        wait_until(
            lambda: not control_peer_allowed(topology, ifname, peer["public_key"]),
            timeout=10,
            what="the disable to reach the node",
            interval=0.02,
        )
        print(f"disable reached the node in {time.monotonic() - started:.3f} s")
        assert not client.ping(GATEWAY, count=2, timeout=1)
        # Applied to the kernel peer by peer, as serve does, with no whole pass needed.
        assert "applied peer by peer" in agent.log()
        assert "peer by peer failed" not in agent.log(), agent.log()
        control.api("PATCH", f"/peers/{peer['id']}", {"enabled": True})
        wait_until(lambda: client.ping(GATEWAY, count=1, timeout=1), timeout=10, what="re-enabled")

        # The agent killed: its node goes offline (30 s unheard), the tunnel stays up.
        agent.stop(signal.SIGKILL)
        assert client.ping(GATEWAY, count=3)
        wait_until(
            lambda: _node(control)["status"] == "offline", timeout=60, what="offline", interval=1
        )

        # Started again, with a ping running: not one lost, and it catches up.
        ping_log = topology.log_path("ping.log")
        argv = ["ping", "-n", "-q", "-c", "40", "-i", "0.2", "-W", "1", GATEWAY]
        pinging = client.ns.popen(argv, log_path=ping_log)
        agent.start()
        wait_until(
            lambda: _node(control)["status"] == "online", timeout=30, what="online after restart"
        )
        peer2 = control.create_peer(ifname, name="laptop")
        wait_until(
            lambda: peer2["public_key"] in wg_peers(topology, ifname),
            timeout=10,
            what="a change after the restart to reach the node",
        )
        pinging.wait(timeout=30)
        summary = Path(ping_log).read_text()
        assert "40 packets transmitted, 40 received" in summary, summary
        sent, got = _received(client, GATEWAY, 5)
        assert got == sent
        assert agent.stop() == 0, agent.log()
    finally:
        if agent.running():
            agent.stop()


@pytest.fixture
def control(topology: Topology, tls: Issued, pg_database: str) -> Iterator[Product]:
    plane = _control(topology, tls, _plane_env(tls, pg_database))
    try:
        plane.start(timeout=30)
        yield plane
    finally:
        plane.close()


def test_a_peer_of_a_node_publishes_its_services_through_the_nodes_agent(
    topology: Topology, control: Product, tls: Issued
) -> None:
    """`wirewarden expose` on a client of a fleet node: the node's agent serves the tunnel
    API on its gateway and relays it; the node's kernel forwards the public ports."""
    client, _, peer, agent = _node_with_a_peer(topology, control, tls, "nas")
    control.api("PATCH", f"/peers/{peer['id']}", {"expose_ports": "8000-8100,25565"})
    agent.start()
    try:
        wait_until(lambda: _node_applied(control), timeout=30, what=f"the node:\n{agent.log()}")
        client.wg_quick_up(control.peer_config(peer["id"]))
        services(topology, client.ns)
        assert from_inet(topology) == (None, "")

        # Outside expose_ports: the control plane's refusal, through the agent, exit 1.
        argv = [WIREWARDEN, "expose", "127.0.0.1:22-2222"]
        refused = client.ns.run(argv, check=False, timeout=30)
        assert refused.returncode == 1
        assert "expose_ports" in refused.stderr, refused.stderr

        specs = (f"127.0.0.1:{HTTP_PORT}-{PUBLIC_TCP}", f"127.0.0.1:{UDP_PORT}-{PUBLIC_UDP}/udp")
        log = topology.log_path("expose-fleet.log")
        started = time.monotonic()
        exposing = client.ns.popen([WIREWARDEN, "expose", *specs], log_path=log)
        url = f"http://{topology.server_uplink_ip}:{PUBLIC_TCP}/"
        first_byte = ["curl", "-sf", "--max-time", "1", url]
        wait_until(
            lambda: topology.inet.run(first_byte, check=False).returncode == 0,
            timeout=10,
            interval=0.05,
            what=f"the TCP service from inet:\n{Path(log).read_text()}\n{agent.log()}",
        )
        print(f"fleet expose: first byte served {time.monotonic() - started:.2f} s after start")
        wait_until(lambda: published(topology), timeout=10, what="both services from inet")
        listed = mappings(control)
        assert {(m["proto"], m["remote_port"], m["peer"]) for m in listed} == {
            ("tcp", PUBLIC_TCP, "nas"),
            ("udp", PUBLIC_UDP, "nas"),
        }
        # Its traffic, as the node's kernel counted it and its agent reported it.
        page = len("served from the client's loopback")
        wait_until(
            lambda: ({m["proto"]: m["bytes"] for m in mappings(control)}.get("tcp") or 0) > page,
            timeout=30,
            what="the node's count of the forward",
        )
        # In the node's kernel; none in the control plane's (it has no such peer).
        table = topology.server.run(["nft", "list", "map", "inet", "wirewarden", "expose_tcp"])
        assert f"{PUBLIC_TCP} : 10.71.0.2 . " in table.stdout, table.stdout
        mine = control.server.run(["nft", "list", "ruleset"], check=False).stdout
        assert "10.71.0.2" not in mine

        # Ctrl-C: gone from the control plane and, through the agent, from the node.
        exposing.send_signal(signal.SIGINT)
        assert exposing.wait(timeout=10) == 0
        assert mappings(control) == []
        wait_until(lambda: from_inet(topology)[0] is None, timeout=3, what="the forward removed")
    finally:
        if agent.running():
            agent.stop()


NAMES_HTTP, NAMES_HTTPS = 8880, 8843


def test_a_node_peers_names_are_passed_from_the_control_planes_front_to_its_nodes(
    topology: Topology, tls: Issued, pg_database: str
) -> None:
    """`wirewarden expose --http` on a client of a fleet node: the zone's record points at
    the control plane, whose front passes the visitor unopened to the node's front (the
    agent's, serving the names of its state), which routes it by Host or SNI to the peer."""
    env = _plane_env(tls, pg_database) | {
        "WIREWARDEN_EXPOSE_DOMAIN": "names.test",
        "WIREWARDEN_EXPOSE_HTTP": f"{NAMES_HTTP},{NAMES_HTTPS}",
    }
    control = _control(topology, tls, env)
    agent: AgentProcess | None = None
    try:
        control.start(timeout=30)
        client, _, peer, agent = _node_with_a_peer(topology, control, tls, "nas")
        ports = f"{NAMES_HTTP},{NAMES_HTTPS}"
        control.api("PATCH", f"/peers/{peer['id']}", {"expose_ports": ports})
        # The node's public host, as the operator sets it and the internet reaches it.
        control.api("PATCH", "/nodes/n1", {"public_host": client.server_ip})
        topology.inet.run(
            ["ip", "route", "add", client.server_ip, "via", topology.server_uplink_ip]
        )
        agent.start()
        wait_until(lambda: _node_applied(control), timeout=30, what=f"the node:\n{agent.log()}")
        client.wg_quick_up(control.peer_config(peer["id"]))
        ns = client.ns
        services(topology, ns)
        shop = "shop.default.names.test"
        pki = issue(topology.workdir / "shop-pki", [shop])
        ns.popen([sys.executable, "-c", TLS_SERVICE, str(TLS_PORT), str(pki.cert), str(pki.key)])

        def visit(host: str, scheme: str = "http") -> str | None:
            port = NAMES_HTTPS if scheme == "https" else NAMES_HTTP
            argv = [
                "curl",
                "-s",
                "--max-time",
                "3",
                "--resolve",
                f"{host}:{port}:{topology.inet_ip}",
            ]
            argv += ["--cacert", str(pki.ca), f"{scheme}://{host}:{port}/"]
            got = topology.inet.run(argv, check=False)
            return got.stdout if got.returncode == 0 else None

        log = topology.log_path("expose-fleet-names.log")
        argv = [WIREWARDEN, "expose", "--http", "blog", f"127.0.0.1:{HTTP_PORT}"]
        exposing = ns.popen([*argv, "--http", "shop", f"127.0.0.1:{TLS_PORT}"], log_path=log)
        blog = "blog.default.names.test"
        wait_until(
            lambda: visit(blog) == "served from the client's loopback",
            timeout=15,
            what=f"the HTTP service by name from inet:\n{Path(log).read_text()}\n{agent.log()}",
        )
        assert visit(shop, "https") == "served over TLS from the client's loopback"
        listed = {m["hostname"]: m for m in mappings(control)}
        assert listed[blog]["node"] == "n1" and listed[blog]["bytes"] > 0
        assert listed[shop]["tls"] is True and listed[shop]["bytes"] > 0
        # The node's own front serves its names to whoever reaches it, and nothing more.
        direct = ["curl", "-s", "--max-time", "3", "-H", f"Host: {blog}"]
        node_url = f"http://{client.server_ip}:{NAMES_HTTP}/"
        got = topology.inet.run([*direct, node_url], check=False).stdout
        assert got == "served from the client's loopback"
        other = topology.inet.run([*direct[:-1], "Host: blog.acme.names.test", node_url])
        assert "No service is published" in other.stdout
        # Ctrl-C: gone from the control plane's table and from the node's.
        exposing.send_signal(signal.SIGINT)
        assert exposing.wait(timeout=10) == 0
        assert "No service is published" in (visit(blog) or "")
        wait_until(
            lambda: (
                "No service is published"
                in topology.inet.run([*direct, node_url], check=False).stdout
            ),
            timeout=5,
            what="the name gone from the node's front",
        )
    finally:
        if agent is not None and agent.running():
            agent.stop()
        control.close()


def test_placement_spreads_peers_over_the_nodes_and_skips_one_whose_agent_died(
    topology: Topology, tls: Issued, pg_database: str
) -> None:
    """Two nodes with real agents (n1 in the server namespace, n2 in inet), the control
    plane in lan: a tenant's new peers go to the least-loaded node of the region and come
    up in that node's WireGuard; n2's agent killed, n2 goes offline and gets no more."""
    control = Product(
        topology,
        netns=topology.lan,
        listen=REPLICA_LISTEN,
        cacert=tls.ca,
        env=_plane_env(tls, pg_database),
        name="cp",
    )
    # inet reaches the control plane in lan through the server (n1's agent forwards).
    topology.inet.run(["ip", "route", "add", Topology.lan_subnet, "via", Topology.server_uplink_ip])
    agents: dict[str, AgentProcess] = {}
    try:
        control.start(timeout=30)
        control.api("POST", "/tenants", {"name": "acme"}, expect=201)
        spaces = {"n1": (topology.server, 81), "n2": (topology.inet, 82)}
        interfaces: dict[str, str] = {}
        for node, (netns, net) in spaces.items():
            place = {"name": node, "region": "eu", "capacity": 4}
            join = control.api("POST", "/nodes", place, expect=201)["join_token"]
            interfaces[node] = topology.unique_ifname("wg")
            body = {"name": interfaces[node], "node": node, "tenant": "acme"}
            body |= {"address": f"10.{net}.0.1/24", "listen_port": LISTEN_PORT}
            control.api("POST", "/interfaces", body, expect=201)
            agents[node] = _agent(topology, tls, join, netns, node, REPLICA_LISTEN)
            agents[node].start()

        def online(node: str) -> bool:
            shown = control.api("GET", f"/nodes/{node}")
            return bool(
                shown["status"] == "online" and shown["applied_revision"] == shown["revision"]
            )

        for node, agent in agents.items():
            wait_until(partial(online, node), timeout=60, what=f"{node}:\n{agent.log()}")

        def place(name: str) -> dict[str, Any]:
            made: dict[str, Any] = control.api(
                "POST", "/tenants/acme/peers", {"name": name, "region": "eu"}, expect=201
            )
            return made

        placed = [place(f"p{i}") for i in range(4)]
        where = {
            node: [p for p in placed if p["interface"] == iface]
            for node, iface in interfaces.items()
        }
        assert {node: len(found) for node, found in where.items()} == {"n1": 2, "n2": 2}

        # Each peer is up in its own node's WireGuard, and only there.
        def up_there(node: str) -> bool:
            keys = {p["public_key"] for p in where[node]}
            seen = wg_peers(topology, interfaces[node], spaces[node][0])
            return keys <= seen and len(seen) == len(keys)  # and no other node's peer

        for node in spaces:
            wait_until(partial(up_there, node), timeout=15, what=f"{node}'s peers up there")

        agents["n2"].stop(signal.SIGKILL)
        wait_until(
            lambda: control.api("GET", "/nodes/n2")["status"] == "offline",
            timeout=60,
            interval=1,
            what="n2 offline",
        )
        later = [place(f"q{i}") for i in range(2)]
        assert {p["interface"] for p in later} == {interfaces["n1"]}
    finally:
        for agent in agents.values():
            if agent.running():
                agent.stop()
        control.close()
        topology.inet.run(["ip", "route", "del", Topology.lan_subnet], check=False)


def wg_peers(topology: Topology, ifname: str, netns: Netns | None = None) -> set[str]:
    out = (netns or topology.server).run(["wg", "show", ifname, "peers"], check=False).stdout
    return set(out.split())


def control_peer_allowed(topology: Topology, ifname: str, key: str) -> bool:
    out = topology.server.run(["wg", "show", ifname, "allowed-ips"], check=False).stdout
    for line in out.splitlines():
        found, _, ips = line.partition("\t")
        if found == key:
            return ips.strip() not in ("", "(none)")
    return False

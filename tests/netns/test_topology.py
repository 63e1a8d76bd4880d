"""Smoke tests of the netns harness with a hand-made WireGuard server (no product code):
wireguard-go + `wg set` + an nft masquerade, set up right here."""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.netns.topology import WG_RUN_DIR, Client, Netns, Topology, pid_alive, wait_until

pytestmark = pytest.mark.netns

VPN_SERVER_IP = "10.99.0.1"
VPN_CLIENT_IP = "10.99.0.2"
VPN_SUBNET = "10.99.0.0/24"
LISTEN_PORT = 51820
HOST_RESOLV_CONF = Path("/etc/resolv.conf")


@dataclass(frozen=True)
class KeyPair:
    private: str
    public: str


def make_keypair() -> KeyPair:
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True)
    public = subprocess.run(
        ["wg", "pubkey"], input=private.stdout, capture_output=True, text=True, check=True
    )
    return KeyPair(private.stdout.strip(), public.stdout.strip())


@dataclass(frozen=True)
class HandmadeServer:
    ifname: str
    keys: KeyPair


def start_handmade_server(topo: Topology, client_public_key: str) -> HandmadeServer:
    """wireguard-go in the foreground, configured with `wg set`, NAT with nft."""
    server: Netns = topo.server
    ifname = topo.unique_ifname("wgs")
    keys = make_keypair()
    server.popen(["wireguard-go", "-f", ifname], log_path=topo.log_path(f"{ifname}.log"))
    sock = WG_RUN_DIR / f"{ifname}.sock"
    wait_until(sock.exists, timeout=10, what=f"{sock}")
    wg_set = ["wg", "set", ifname, "private-key", "/dev/stdin", "listen-port", str(LISTEN_PORT)]
    peer = ["peer", client_public_key, "allowed-ips", f"{VPN_CLIENT_IP}/32"]
    server.run([*wg_set, *peer], input=keys.private + "\n")
    server.run(["ip", "addr", "add", f"{VPN_SERVER_IP}/24", "dev", ifname])
    server.run(["ip", "link", "set", ifname, "up"])
    server.run(["nft", "-f", "-"], input=masquerade_ruleset(topo.server_uplink_dev))
    server.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    return HandmadeServer(ifname, keys)


def masquerade_ruleset(uplink: str) -> str:
    return f"""
table inet handmade {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {VPN_SUBNET} oifname "{uplink}" masquerade
    }}
}}
"""


def client_conf(client: Client, keys: KeyPair, server_public_key: str) -> str:
    return f"""[Interface]
PrivateKey = {keys.private}
Address = {VPN_CLIENT_IP}/24
DNS = {VPN_SERVER_IP}

[Peer]
PublicKey = {server_public_key}
Endpoint = {client.server_ip}:{LISTEN_PORT}
AllowedIPs = 0.0.0.0/0, ::/0
PersistentKeepalive = 25
"""


def connect_client(topo: Topology) -> tuple[Client, HandmadeServer]:
    client = topo.add_client()
    client_keys = make_keypair()
    server = start_handmade_server(topo, client_keys.public)
    client.wg_quick_up(client_conf(client, client_keys, server.keys.public))
    return client, server


def fingerprint(path: Path) -> tuple[str, int, int]:
    stat = os.stat(path)
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_ino, stat.st_mtime_ns


def test_full_tunnel_reaches_server_inet_and_lan(topology: Topology) -> None:
    host_resolv = fingerprint(HOST_RESOLV_CONF)
    client = topology.add_client()
    assert client.ping(client.server_ip)
    assert not client.ping(topology.inet_ip), "inet must be unreachable without the VPN"

    client_keys = make_keypair()
    server = start_handmade_server(topology, client_keys.public)
    ifname = client.wg_quick_up(client_conf(client, client_keys, server.keys.public))

    assert client.wg_ifnames == [ifname]
    assert client.ping(VPN_SERVER_IP, count=3)
    assert client.http_get(f"http://{topology.inet_ip}/") == "hello from inet"
    assert client.http_get(f"http://{topology.lan_host_ip}/") == "hello from lan"
    resolv_in_ns = client.ns.run(["cat", "/etc/resolv.conf"]).stdout
    assert f"nameserver {VPN_SERVER_IP}" in resolv_in_ns
    assert fingerprint(HOST_RESOLV_CONF) == host_resolv

    client.wg_quick_down()
    assert not (WG_RUN_DIR / f"{ifname}.sock").exists()
    assert VPN_SERVER_IP not in client.ns.run(["cat", "/etc/resolv.conf"]).stdout
    assert not client.ping(topology.inet_ip)
    assert fingerprint(HOST_RESOLV_CONF) == host_resolv
    assert not Path("/etc/resolv.conf.bak").exists()


def test_iperf3_through_tunnel(topology: Topology) -> None:
    client, _ = connect_client(topology)
    report = client.iperf3(topology.inet_ip, seconds=1)
    assert report["end"]["sum_received"]["bits_per_second"] > 1_000_000


def test_close_leaves_nothing_behind() -> None:
    topo = Topology()
    try:
        client, server = connect_client(topo)
        second = topo.add_client()
        names = [ns.name for ns in topo.namespaces]
        pids = [pid for ns in topo.namespaces for pid in ns.pids()]
        ifnames = topo.ifnames
        assert {client.ns.name, second.ns.name, topo.server.name} <= set(names)
        assert {server.ifname, *client.wg_ifnames} <= set(ifnames)
        assert len(pids) >= 5  # 2 HTTP servers, iperf3, 2 wireguard-go
    finally:
        topo.close()
    topo.close()  # idempotent

    netns_list = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in netns_list for name in names)
    assert topo.root_links() == []
    assert not any(pid_alive(pid) for pid in pids)
    assert not any((WG_RUN_DIR / f"{name}.sock").exists() for name in ifnames)
    assert not any(Path("/etc/netns", name).exists() for name in names)
    assert not topo.workdir.exists()

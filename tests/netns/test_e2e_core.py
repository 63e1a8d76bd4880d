"""End-to-end tests of the core product (DESIGN.md section 4): `wirewarden serve` runs in
the server namespace, peers come up from the configs it exports with real wg-quick +
wireguard-go in client namespaces, and the tests check what crosses the tunnel."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.netns.product import Product
from tests.netns.topology import WG_QUICK_ENV, Client, Topology, wait_until
from wirewarden.domain.keys import generate_keypair

pytestmark = pytest.mark.netns

# How long a client may take to reach the server again after the server lost its session
# (WireGuard itself retries the handshake 15 s after unanswered data, then every 5 s).
RECONNECT_TIMEOUT = 35


# ---------------------------------------------------------------- helpers


@dataclass
class PingReport:
    transmitted: int
    received: set[int]
    lost: list[int]

    def __str__(self) -> str:
        return f"{self.transmitted} sent, {len(self.lost)} lost {self.lost}"


class Pinger:
    """`ping` running continuously in a client namespace; stop() counts what was lost."""

    _REPLY = re.compile(r"icmp_seq=(\d+)")
    _SUMMARY = re.compile(r"(\d+) packets transmitted")

    def __init__(self, client: Client, target: str, interval: float = 0.1) -> None:
        self.client = client
        self.log = Path(client.topology.log_path(f"ping-{client.ns.name}-{time.time_ns()}.log"))
        argv = ["ping", "-n", "-i", str(interval), "-W", "1", target]
        self.proc = client.ns.popen(argv, log_path=str(self.log))

    def stop(self) -> PingReport:
        # `ip netns exec` execs ping, so the pid is ping's own: SIGINT makes it summarise.
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        text = self.log.read_text()
        summary = self._SUMMARY.search(text)
        assert summary is not None, f"no ping summary in:\n{text}"
        transmitted = int(summary.group(1))
        received = {int(seq) for seq in self._REPLY.findall(text)}
        # The last echo may still have been in flight when ping was stopped.
        lost = sorted(set(range(1, transmitted)) - received)
        return PingReport(transmitted, received, lost)


@dataclass
class Tunnel:
    client: Client
    ifname: str
    gateway: str
    interface: dict[str, Any]
    peer: dict[str, Any]
    config: str
    client_ifname: str


def open_tunnel(topology: Topology, product: Product, *, address: str) -> Tunnel:
    """Interface + peer through the API, the exported config brought up on a new client,
    and the gateway answering through the tunnel."""
    client = topology.add_client()
    ifname = topology.unique_ifname("ww")
    # Each client has its own link to the server: the endpoint it dials is on that link.
    iface = product.create_interface(name=ifname, address=address, endpoint=client.server_ip)
    if iface["status"] != "applied":
        # On a loaded machine a first apply may time out; the reconciler's retry must heal it.
        print(f"interface {ifname} answered {iface['status']}: {iface.get('error')}")
        path = f"/interfaces/{ifname}"
        wait_until(
            lambda: product.api("GET", path)["status"] == "applied",
            timeout=30,
            interval=0.5,
            what=f"{ifname} applied by a retry after: {iface.get('error')}",
        )
    created = product.create_peer(ifname, name="laptop")
    assert created["status"] == "applied", created
    config = product.peer_config(created["id"])
    assert f"Endpoint = {client.server_ip}:{iface['listen_port']}" in config, config
    client_ifname = client.wg_quick_up(config)
    gateway = address.split("/")[0]
    wait_until(lambda: client.ping(gateway, timeout=1), timeout=15, what="ping to the gateway")
    return Tunnel(client, ifname, gateway, iface, created, config, client_ifname)


def latest_handshake(product: Product, ifname: str, public_key: str) -> int:
    out = product.server.run(["wg", "show", ifname, "latest-handshakes"]).stdout
    for line in out.splitlines():
        key, _, stamp = line.partition("\t")
        if key == public_key:
            return int(stamp)
    raise AssertionError(f"{public_key} is not a peer of {ifname}:\n{out}")


def wireguard_go_pids(product: Product, ifname: str) -> list[int]:
    pattern = f"^wireguard-go -f {ifname}$"
    out = product.server.run(["pgrep", "-f", pattern], check=False).stdout
    return [int(pid) for pid in out.split()]


def add_zombie(product: Product, ifname: str, allowed_ip: str) -> float:
    """Add a peer by hand, behind the product's back; wait for the reconciler to remove it
    and return how long that took."""
    zombie = generate_keypair().public_key
    product.server.run(["wg", "set", ifname, "peer", zombie, "allowed-ips", allowed_ip])
    assert zombie in product.wg_peers(ifname)
    started = time.monotonic()
    wait_until(
        lambda: zombie not in product.wg_peers(ifname),
        timeout=6,
        what="the reconciler to remove the zombie peer",
        interval=0.1,
    )
    return time.monotonic() - started


def report(what: str, **figures: object) -> None:
    """Print figures the test measured (shown with pytest -s, and in the log on failure)."""
    print(f"[e2e] {what}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


# ----------------------------------------------------------------- tests


def test_full_tunnel_through_nat(topology: Topology, product: Product) -> None:
    started = time.monotonic()
    tunnel = open_tunnel(topology, product, address="10.61.0.1/24")
    client = tunnel.client
    assert "AllowedIPs = 0.0.0.0/0" in tunnel.config  # a full tunnel by default

    # inet has no route to 10.61.0.0/24: an answer proves the product forwards and NATs.
    assert client.http_get(f"http://{topology.inet_ip}/") == topology.inet_http_body
    forwarding = product.server.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip()
    assert forwarding == "1"
    table = product.server.run(["nft", "list", "table", "inet", "wirewarden"]).stdout
    assert "masquerade" in table and "10.61.0.0/24" in table, table
    # The client really routes everything through the tunnel.
    route = client.ns.run(["ip", "route", "get", topology.inet_ip]).stdout
    assert tunnel.client_ifname in route, route

    # What the user sees in the API: the peer is online, with traffic counted.
    def online() -> bool:
        seen = product.api("GET", f"/peers/{tunnel.peer['id']}")
        return bool(seen["online"] and seen["rx_bytes"] > 0 and seen["tx_bytes"] > 0)

    wait_until(online, timeout=10, what="the peer to show online with traffic", interval=0.5)
    report("full tunnel", seconds=round(time.monotonic() - started, 1))


def test_disable_enable_delete_peer(topology: Topology, product: Product) -> None:
    tunnel = open_tunnel(topology, product, address="10.62.0.1/24")
    client, peer_id, key = tunnel.client, tunnel.peer["id"], tunnel.peer["public_key"]

    disabled = product.api("PATCH", f"/peers/{peer_id}", {"enabled": False})
    assert disabled["enabled"] is False and disabled["status"] == "applied", disabled
    # Applied before the API answered: the peer is blocked (no AllowedIPs: WireGuard passes
    # nothing of it), its session kept.
    assert product.wg_allowed_ips(tunnel.ifname).get(key) == ""
    assert not client.ping(tunnel.gateway, count=3, timeout=1)
    assert client.http_get(f"http://{topology.inet_ip}/", timeout=2) is None

    started = time.monotonic()
    enabled = product.api("PATCH", f"/peers/{peer_id}", {"enabled": True})
    assert enabled["enabled"] is True and enabled["status"] == "applied", enabled
    # Within a second of the click: no new handshake needed, the session lived on.
    wait_until(
        lambda: client.ping(tunnel.gateway, timeout=0.3),
        timeout=1.0,
        what="the re-enabled peer to reach the gateway within a second",
        interval=0.05,
    )
    report("re-enabled peer reconnected", seconds_from_request=round(time.monotonic() - started, 2))
    assert client.http_get(f"http://{topology.inet_ip}/") == topology.inet_http_body

    product.api("DELETE", f"/peers/{peer_id}", expect=204)
    assert key not in product.wg_peers(tunnel.ifname)
    assert not client.ping(tunnel.gateway, count=3, timeout=1)
    status, _ = product.request("GET", f"/peers/{peer_id}")
    assert status == 404
    # ... and the reconciler does not bring it back.
    time.sleep(2.5)
    assert key not in product.wg_peers(tunnel.ifname)
    assert not client.ping(tunnel.gateway, timeout=1)


def test_zombie_peer_is_removed(topology: Topology, product: Product) -> None:
    tunnel = open_tunnel(topology, product, address="10.63.0.1/24")
    pinger = Pinger(tunnel.client, tunnel.gateway)
    removed_after = add_zombie(product, tunnel.ifname, "10.63.0.200/32")
    time.sleep(1)  # the real peer keeps its tunnel through and after the removal
    pings = pinger.stop()
    report("zombie", removed_after_s=round(removed_after, 2), pings=pings)
    assert product.wg_peers(tunnel.ifname) == [tunnel.peer["public_key"]]
    assert pings.lost == [], pings


def test_crashed_wireguard_go_is_restarted(topology: Topology, product: Product) -> None:
    tunnel = open_tunnel(topology, product, address="10.64.0.1/24")
    client = tunnel.client
    [old_pid] = wireguard_go_pids(product, tunnel.ifname)
    started = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)

    def restarted() -> bool:
        pids = wireguard_go_pids(product, tunnel.ifname)
        return bool(pids) and old_pid not in pids

    wait_until(restarted, timeout=10, what="a new wireguard-go for the interface", interval=0.1)
    wait_until(
        lambda: tunnel.peer["public_key"] in product.wg_peers(tunnel.ifname),
        timeout=10,
        what="the peer to be configured again",
    )
    back_after = time.monotonic() - started
    wait_until(
        lambda: client.ping(tunnel.gateway, timeout=1),
        timeout=RECONNECT_TIMEOUT,
        what="the client to reach the gateway again",
    )
    reconnected_after = time.monotonic() - started
    report(
        "wireguard-go killed",
        interface_back_s=round(back_after, 1),
        client_reconnected_s=round(reconnected_after, 1),
    )
    assert client.http_get(f"http://{topology.inet_ip}/") == topology.inet_http_body
    iface = product.api("GET", f"/interfaces/{tunnel.ifname}")
    assert iface["status"] == "applied", iface


def test_restart_serve_keeps_tunnel(topology: Topology, product: Product) -> None:
    tunnel = open_tunnel(topology, product, address="10.65.0.1/24")
    key = tunnel.peer["public_key"]
    handshake = latest_handshake(product, tunnel.ifname, key)
    [wg_pid] = wireguard_go_pids(product, tunnel.ifname)
    pinger = Pinger(tunnel.client, tunnel.gateway)
    time.sleep(0.5)
    product.stop()
    time.sleep(0.5)  # serve is down: the data plane carries on by itself
    product.start()
    # The restarted reconciler runs over the interface it found running (it removes a
    # zombie); let it make a few more passes before counting.
    add_zombie(product, tunnel.ifname, "10.65.0.200/32")
    assert product.api("GET", f"/interfaces/{tunnel.ifname}")["status"] == "applied"
    time.sleep(2)
    pings = pinger.stop()
    report("serve restart", pings=pings)
    assert len(pings.lost) <= 2, pings
    assert key in product.wg_peers(tunnel.ifname)
    assert wireguard_go_pids(product, tunnel.ifname) == [wg_pid]  # not restarted
    assert latest_handshake(product, tunnel.ifname, key) == handshake  # no new handshake
    assert tunnel.client.ping(tunnel.gateway, timeout=1)


BULK_SCRIPT = r"""
import json, sys, time
import httpx

base, token, mode, iface, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
headers = {"Authorization": f"Bearer {token}"}
out = {"ids": [], "seconds": 0.0, "slowest_ms": 0.0}
started = time.monotonic()
with httpx.Client(base_url=base + "/api/v1", headers=headers, timeout=30) as api:
    items = json.loads(sys.stdin.read()) if mode == "delete" else range(int(count))
    for item in items:
        t = time.monotonic()
        if mode == "create":
            r = api.post(f"/interfaces/{iface}/peers", json={"name": f"bulk{item:04d}"})
            assert r.status_code == 201, r.text
            assert r.json()["status"] == "applied", r.text
            out["ids"].append(r.json()["id"])
        else:
            r = api.delete(f"/peers/{item}")
            assert r.status_code == 204, r.text
        out["slowest_ms"] = max(out["slowest_ms"], (time.monotonic() - t) * 1000)
out["seconds"] = time.monotonic() - started
print(json.dumps(out))
"""

BULK_PEERS = 500


def test_bulk_peer_changes_do_not_disturb_a_tunnel(topology: Topology, product: Product) -> None:
    tunnel = open_tunnel(topology, product, address="10.66.0.1/22")
    key = tunnel.peer["public_key"]
    pinger = Pinger(tunnel.client, tunnel.gateway, interval=0.1)

    created = json.loads(product.python(BULK_SCRIPT, "create", tunnel.ifname, str(BULK_PEERS)))
    ids = created["ids"]
    assert len(ids) == BULK_PEERS
    peers = product.wg_peers(tunnel.ifname)
    assert len(peers) == BULK_PEERS + 1 and key in peers
    deleted = json.loads(
        product.python(BULK_SCRIPT, "delete", tunnel.ifname, "0", input=json.dumps(ids))
    )
    time.sleep(1.5)  # a reconcile pass after the last change
    pings = pinger.stop()
    report(
        "bulk",
        peers=BULK_PEERS,
        create_s=round(created["seconds"], 1),
        create_slowest_ms=round(created["slowest_ms"]),
        delete_s=round(deleted["seconds"], 1),
        delete_slowest_ms=round(deleted["slowest_ms"]),
        pings=pings,
    )
    assert product.wg_peers(tunnel.ifname) == [key]
    listed = product.api("GET", f"/interfaces/{tunnel.ifname}/peers")
    assert [p["name"] for p in listed["items"]] == ["laptop"]
    assert pings.lost == [], pings


def test_import_running_wg_quick_config(topology: Topology, product: Product) -> None:
    client = topology.add_client()
    ifname = topology.unique_ifname("wi")
    server_keys, client_keys = generate_keypair(), generate_keypair()
    conf_dir = topology.workdir / "import"
    conf_dir.mkdir(mode=0o700)
    server_conf = conf_dir / f"{ifname}.conf"
    server_conf.write_text(
        f"""[Interface]
Address = 10.77.0.1/24
ListenPort = 51900
PrivateKey = {server_keys.private_key}

[Peer]
# phone
PublicKey = {client_keys.public_key}
AllowedIPs = 10.77.0.2/32
"""
    )
    server_conf.chmod(0o600)
    product.server.run(["wg-quick", "up", str(server_conf)], env=WG_QUICK_ENV, timeout=30)
    client_conf = f"""[Interface]
PrivateKey = {client_keys.private_key}
Address = 10.77.0.2/32

[Peer]
PublicKey = {server_keys.public_key}
Endpoint = {client.server_ip}:51900
AllowedIPs = 10.77.0.0/24
"""
    client.wg_quick_up(client_conf)
    wait_until(lambda: client.ping("10.77.0.1", timeout=1), timeout=15, what="hand-made tunnel")
    handshake = latest_handshake(product, ifname, client_keys.public_key)

    pinger = Pinger(client, "10.77.0.1")
    time.sleep(0.5)
    result = product.cli("import", str(server_conf), "--endpoint", client.server_ip)
    assert f"imported {ifname} with 1 peers" in result.stdout, result
    wait_until(
        lambda: product.api("GET", f"/interfaces/{ifname}")["status"] == "applied",
        timeout=5,
        what="the imported interface to be reported applied",
    )
    time.sleep(3)  # a few reconcile passes of serve over the adopted interface
    pings = pinger.stop()
    report("import", pings=pings)
    assert len(pings.lost) <= 1, pings
    assert latest_handshake(product, ifname, client_keys.public_key) == handshake

    listed = json.loads(product.cli("peer", "list", "-i", ifname, "--json").stdout)
    [peer] = listed["items"]
    assert peer["public_key"] == client_keys.public_key
    assert peer["address"] == "10.77.0.2/32"
    assert peer["has_private_key"] is False
    status, body = product.request("GET", f"/peers/{peer['id']}/config")
    assert status == 409, body
    assert product.wg_peers(ifname) == [client_keys.public_key]
    assert client.ping("10.77.0.1", timeout=1)

    # The client's unchanged config still gets in with a fresh handshake (a restarted
    # device): the adopted peer's keys are exactly those of the file.
    client.wg_quick_down()
    client.wg_quick_up(client_conf)
    wait_until(
        lambda: client.ping("10.77.0.1", timeout=1),
        timeout=10,
        what="a fresh handshake with the imported peer",
    )
    assert latest_handshake(product, ifname, client_keys.public_key) > handshake

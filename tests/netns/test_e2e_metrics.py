"""End to end: traffic through a real tunnel shows up in the history and /metrics, survives a
restart of `serve`, and a killed wireguard-go (counters back at zero) neither loses nor
doubles bytes."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.netns.product import Product
from tests.netns.test_e2e_core import Tunnel, open_tunnel, report, wireguard_go_pids
from tests.netns.topology import Topology, wait_until

pytestmark = pytest.mark.netns

PERIOD = 1.0  # collection period for this test, seconds
MB = 1_000_000
BIG = 20 * MB


@pytest.fixture
def product(topology: Topology) -> Iterator[Product]:
    running = Product(topology)
    running.env["WIREWARDEN_METRICS_PERIOD"] = str(PERIOD)
    try:
        running.start()
        yield running
    finally:
        running.close()


def kernel_counters(product: Product, ifname: str, public_key: str) -> tuple[int, int]:
    """(rx, tx) of the peer as `wg show transfer` prints them on the server."""
    out = product.server.run(["wg", "show", ifname, "transfer"]).stdout
    for line in out.splitlines():
        key, rx, tx = line.split("\t")
        if key == public_key:
            return int(rx), int(tx)
    raise AssertionError(f"{public_key} not on {ifname}:\n{out}")


def history(product: Product, peer_id: int) -> dict[str, Any]:
    body: dict[str, Any] = product.api("GET", f"/peers/{peer_id}/traffic?step=60")
    assert all(p["rx_bytes"] >= 0 and p["tx_bytes"] >= 0 for p in body["points"]), body
    return body


def scraped(product: Product, public_key: str) -> tuple[int, int]:
    """The peer's rx/tx counters in /metrics (loopback: no token needed)."""
    text = product._curl(["/metrics"])
    found = {}
    for name in ("receive", "transmit"):
        labels = rf'{{[^}}]*public_key="{re.escape(public_key)}"[^}}]*}}'
        pattern = rf"wirewarden_peer_{name}_bytes_total{labels} (\S+)"
        match = re.search(pattern, text)
        assert match, f"no {name} counter for the peer in /metrics:\n{text[:2000]}"
        found[name] = int(float(match.group(1)))
    return found["receive"], found["transmit"]


def client_rx(tunnel: Tunnel) -> int:
    """Bytes the client's own WireGuard interface received from the server."""
    out = tunnel.client.ns.run(["wg", "show", tunnel.client_ifname, "transfer"]).stdout
    return sum(int(line.split("\t")[1]) for line in out.splitlines())


def download(tunnel: Tunnel, topology: Topology, size: int) -> int:
    name = f"blob-{size}.bin"
    path = topology.workdir / f"http-{topology.inet.name}" / name
    if not path.exists():
        path.write_bytes(os.urandom(size))
    url = f"http://{topology.inet_ip}:{topology.http_port}/{name}"
    argv = ["curl", "-sS", "--fail", "--noproxy", "*", "--max-time", "60", "-o", "/dev/null"]
    out = tunnel.client.ns.run([*argv, "-w", "%{size_download}", url], timeout=70).stdout
    assert int(out) == size
    return size


def within(value: float, expected: float, tolerance: float = 0.05) -> bool:
    return abs(value - expected) <= tolerance * expected


def test_traffic_history_metrics_restart_and_counter_reset(
    topology: Topology, product: Product
) -> None:
    tunnel = open_tunnel(topology, product, address="10.71.0.1/24")
    peer_id, key = tunnel.peer["id"], tunnel.peer["public_key"]
    time.sleep(2 * PERIOD)
    before = history(product, peer_id)
    kernel_before = kernel_counters(product, tunnel.ifname, key)
    client_before = client_rx(tunnel)

    # 1. a 20 MB download through the tunnel, seen within two collection periods
    download(tunnel, topology, BIG)
    done = time.monotonic()
    kernel_after = kernel_counters(product, tunnel.ifname, key)
    moved_tx = kernel_after[1] - kernel_before[1]  # server -> client: the client's download
    assert moved_tx >= BIG

    def recorded() -> bool:
        now = history(product, peer_id)
        return within(now["tx_bytes"] - before["tx_bytes"], moved_tx)

    wait_until(recorded, timeout=2 * PERIOD + 1, what="the download in the history")
    seen_after = time.monotonic() - done

    def settled() -> bool:
        # Every byte the kernel counted is in the history, exactly.
        moved = kernel_counters(product, tunnel.ifname, key)[1] - kernel_before[1]
        return history(product, peer_id)["tx_bytes"] - before["tx_bytes"] == moved

    wait_until(settled, timeout=5, what="the history to match the kernel exactly")
    first = history(product, peer_id)
    grown = first["tx_bytes"] - before["tx_bytes"]
    metrics_rx, metrics_tx = scraped(product, key)
    assert within(metrics_tx, kernel_counters(product, tunnel.ifname, key)[1])
    assert within(metrics_tx, first["tx_bytes"])
    assert metrics_rx > 0
    report(
        "download in history",
        seconds_to_show=round(seen_after, 2),
        history_tx=grown,
        kernel_tx=moved_tx,
        overhead=round(grown / BIG, 4),
        metrics_tx=metrics_tx,
        client_rx=client_rx(tunnel) - client_before,
    )
    # The payload plus tunnel, TCP/IP headers and retransmissions, as the server counted it.
    assert BIG <= grown <= BIG * 1.5

    iface = product.api("GET", f"/interfaces/{tunnel.ifname}/traffic?step=60")
    assert within(iface["tx_bytes"], first["tx_bytes"])
    usage = product.api("GET", f"/peers/{peer_id}/usage")
    assert within(usage["traffic_bytes"], first["tx_bytes"] + first["rx_bytes"])

    # 2. restart serve: the history is intact and nothing is counted again
    product.stop()
    product.start()
    time.sleep(2 * PERIOD + 0.5)
    after_restart = history(product, peer_id)
    assert after_restart["tx_bytes"] >= first["tx_bytes"]
    assert after_restart["tx_bytes"] - first["tx_bytes"] < 100_000, "traffic counted twice"
    report("serve restart", tx_before=first["tx_bytes"], tx_after=after_restart["tx_bytes"])

    # 3. kill wireguard-go: the reconciler brings it back with counters at zero
    (old_pid,) = wireguard_go_pids(product, tunnel.ifname)
    os.kill(old_pid, signal.SIGKILL)
    wait_until(
        lambda: wireguard_go_pids(product, tunnel.ifname) not in ([], [old_pid]),
        timeout=15,
        what="a new wireguard-go",
    )
    wait_until(lambda: key in product.wg_peers(tunnel.ifname), timeout=10, what="the peer restored")
    time.sleep(2 * PERIOD + 0.5)
    after_kill = history(product, peer_id)
    assert 0 <= after_kill["tx_bytes"] - after_restart["tx_bytes"] < 100_000

    # the client reconnects (a fresh wg-quick up handshakes at once) and downloads again
    tunnel.client.wg_quick_down()
    tunnel.client.wg_quick_up(tunnel.config)
    wait_until(lambda: tunnel.client.ping(tunnel.gateway, timeout=1), timeout=20, what="reconnect")
    download(tunnel, topology, 5 * MB)
    since_reset = kernel_counters(product, tunnel.ifname, key)[1]  # counted from zero

    def resumed() -> bool:
        now = history(product, peer_id)
        return within(now["tx_bytes"] - after_kill["tx_bytes"], since_reset, 0.05)

    wait_until(resumed, timeout=2 * PERIOD + 1, what="the second download in the history")
    final = history(product, peer_id)
    report(
        "after wireguard-go restart",
        kernel_tx_since_reset=since_reset,
        history_growth=final["tx_bytes"] - after_kill["tx_bytes"],
        total=final["tx_bytes"],
    )
    assert final["tx_bytes"] - after_kill["tx_bytes"] <= 5 * MB * 1.5  # not doubled

    # the CLI reads the same store
    out = product.cli("peer", "usage", "laptop", "-i", tunnel.ifname).stdout
    assert "download" in out and "MiB" in out, out
    top = product.cli("top", "--range", "1h").stdout
    assert "laptop" in top, top

"""A router namespace with the classifier on its path: shared by the kernel tests and
bench/classify_bench.py. The server namespace routes one client to `inet`
(masqueraded); the queue rules sit on the client's link; the reader is started apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.netns.topology import Client, Topology, wait_until
from wirewarden.domain.classify.steering import CHAIN

QUEUE = 7


def route_client(topology: Topology) -> Client:
    client = topology.add_client()
    server = topology.server
    server.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    server.run(["iptables", "-t", "nat", "-A", "POSTROUTING", "-o",
                topology.server_uplink_dev, "-j", "MASQUERADE"])  # fmt: skip
    client.ns.run(["ip", "route", "add", "default", "via", client.server_ip])
    return client


def steer(topology: Topology, client: Client, on: bool = True) -> None:
    """The queue rules on (through the product's driver) or off."""
    call = (
        f"steering.apply(Steering({QUEUE}, ({client.server_dev!r},)))"
        if on
        else "steering.remove()"
    )
    code = (
        "from wirewarden.dataplane import steering\n"
        "from wirewarden.domain.classify.steering import Steering\n" + call + "\n"
    )
    topology.server.run([sys.executable, "-c", code])


def start_reader(topology: Topology) -> subprocess.Popen[bytes]:
    log = topology.log_path("nfqueue.log")
    proc = topology.server.popen(
        [sys.executable, "-m", "wirewarden.dataplane.nfqueue", "--queue", str(QUEUE)],
        log_path=log,
    )
    wait_until(lambda: bound(topology) or proc.poll() is not None, timeout=10, what="the queue")
    assert proc.poll() is None, Path(log).read_text()
    return proc


def bound(topology: Topology) -> bool:
    # One line per bound queue, its number first (the file is per namespace).
    queues = topology.server.run(["cat", "/proc/net/netfilter/nfnetlink_queue"]).stdout
    return any(line.split()[:1] == [str(QUEUE)] for line in queues.splitlines())


def queued(topology: Topology) -> int:
    """Packets the queue rules have sent to the reader so far."""
    out = topology.server.run(["iptables", "-t", "mangle", "-L", CHAIN, "-v", "-x", "-n"]).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if "NFQUEUE" in line)

"""Expose figures (issue 18, DESIGN.md §7), in one run, in namespaces it creates and removes.

Run as root from the repository root:

    .venv/bin/python bench/expose_bench.py            # about two minutes
    .venv/bin/python bench/expose_bench.py --seconds 3 --mappings 200

With the test topology (tests/netns: a client, the server running `wirewarden serve`, an
inet host) and a client brought up from its exported config:
1. TCP throughput inet -> client: through a published port (the server forwards in its
   kernel), against the tunnel itself (the client pulling from inet, the same direction),
   and against a userspace relay (socat on the server) on the same path; UDP likewise
   (iperf3 -u at a fixed offered rate, the rate received). The service listens on the
   tunnel address, so the client needs no relay of its own: what is measured is the server;
2. time from `wirewarden expose` starting to the first byte served at the public port;
3. N mappings on the node: time until the kernel holds them all, then the TCP throughput
   through one of them with all N present against with one.
It prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.netns.product import WIREWARDEN, Product
from tests.netns.test_e2e_core import open_tunnel
from tests.netns.topology import Topology, wait_until

PORT = 5301  # iperf3 in the client, on its tunnel address
SOCAT_PORT = 5302
HTTP_PUBLIC = 5303


def mbits(report: dict[str, object], udp: bool = False) -> float:
    end = report["end"]
    assert isinstance(end, dict)
    key = "sum" if udp else "sum_received"
    return round(float(end[key]["bits_per_second"]) / 1e6, 1)


def iperf(ns_run: object, host: str, port: int, seconds: float, *extra: str) -> dict[str, object]:
    argv = ["iperf3", "-c", host, "-p", str(port), "-t", str(seconds), "-J", *extra]
    result = ns_run(argv, timeout=seconds + 30, check=False)  # type: ignore[operator]
    report: dict[str, object] = json.loads(result.stdout)
    if "error" in report:
        raise RuntimeError(f"iperf3: {report['error']}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--mappings", type=int, default=1000)
    parser.add_argument("--udp-mbit", type=int, default=500)
    args = parser.parse_args()
    if shutil.which("socat") is None:
        raise SystemExit("socat is not installed (scripts/setup.sh installs it with the tests)")
    with Topology() as topology:
        product = Product(topology)
        try:
            product.start()
            run(topology, product, args)
        finally:
            product.close()


def run(topology: Topology, product: Product, args: argparse.Namespace) -> None:
    tunnel = open_tunnel(topology, product, address="10.71.0.1/24")
    client, ns, inet = tunnel.client, tunnel.client.ns, topology.inet
    tunnel_ip = "10.71.0.2"
    public = topology.server_uplink_ip
    last = 20000 + args.mappings
    ports = f"{PORT},{HTTP_PUBLIC},20000-{last}"
    product.api("PATCH", f"/peers/{tunnel.peer['id']}", {"expose_ports": ports})
    ns.popen(["iperf3", "-s", "-B", tunnel_ip, "-p", str(PORT)])
    ns.popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "18080",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(topology.workdir),
        ]
    )
    # serve's first passes after the interface and peer came up hold the host lock for
    # about a second, which a registration waits for: a user's server has long settled
    # (straight after, the figure was 0.93-1.48 s; docs/benchmarks.md).
    time.sleep(6)

    # 2. start to first byte (a web server on the client's loopback, through its relay)
    started = time.monotonic()
    # iperf3 talks TCP for control and sends UDP on the same port: both published.
    specs = [f"127.0.0.1:18080-{HTTP_PUBLIC}", f"{tunnel_ip}:{PORT}-{PORT}"]
    specs.append(f"{tunnel_ip}:{PORT}-{PORT}/udp")
    expose = ns.popen([WIREWARDEN, "expose", *specs])
    url = f"http://{public}:{HTTP_PUBLIC}/"

    def served() -> bool:
        # A probe before the forward exists is dropped, not refused, so it waits out its
        # time: a short one keeps the figure's grain at 0.1 s (the answer takes ~1 ms).
        probe = inet.run(["curl", "-sf", "--max-time", "0.1", url], check=False)
        return probe.returncode == 0

    wait_until(served, timeout=20, interval=0.02, what="the published port")
    first = time.monotonic() - started
    print(f"start to first byte: {first:.2f} s (the CLI's start, registration, the kernel)")
    # The CLI registers its mappings one after another: the others may follow the first
    # byte by a few tens of milliseconds (each is in the kernel when it is answered).
    wait_until(
        lambda: len(product.api("GET", "/mappings")) == len(specs),
        timeout=10,
        interval=0.05,
        what="every mapping registered",
    )

    # 1. throughput: mapping, tunnel, socat
    s = args.seconds
    mapped = mbits(iperf(inet.run, public, PORT, s))
    tunnel_mbit = mbits(iperf(ns.run, topology.inet_ip, 5201, s, "-R"))
    product.server.popen(
        ["socat", f"TCP-LISTEN:{SOCAT_PORT},fork,reuseaddr", f"TCP:{tunnel_ip}:{PORT}"]
    )
    time.sleep(0.5)
    relayed = mbits(iperf(inet.run, public, SOCAT_PORT, s))
    print(
        f"TCP inet -> client: mapping {mapped} Mbit/s, tunnel {tunnel_mbit} Mbit/s "
        f"({mapped / tunnel_mbit:.2f}x), socat on the server {relayed} Mbit/s "
        f"(mapping {mapped / relayed:.2f}x socat)"
    )
    rate = f"{args.udp_mbit}M"
    udp_mapped = mbits(iperf(inet.run, public, PORT, s, "-u", "-b", rate), udp=True)
    udp_tunnel = mbits(iperf(ns.run, topology.inet_ip, 5201, s, "-u", "-b", rate, "-R"), udp=True)
    print(
        f"UDP at {rate}bit/s offered: mapping {udp_mapped} Mbit/s, tunnel {udp_tunnel} "
        f"Mbit/s ({udp_mapped / udp_tunnel:.2f}x)"
    )

    # 3. many mappings
    register = """
import httpx, sys, time
first, n, local = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
with httpx.Client(base_url="http://10.71.0.1:7070/v1", timeout=30) as http:
    t = time.monotonic()
    for port in range(first, first + n):
        r = http.post("/mappings", json={"remote_port": port, "local_port": local})
        assert r.status_code == 201, r.text
    print(time.monotonic() - t)
"""
    before = time.monotonic()
    took = float(
        ns.run(
            [sys.executable, "-c", register, "20000", str(args.mappings), str(PORT)], timeout=600
        ).stdout
    )

    def all_in_kernel() -> bool:
        out = product.server.run(["nft", "-j", "list", "map", "inet", "wirewarden", "expose_tcp"])
        body = json.loads(out.stdout)["nftables"][1]["map"]
        return bool(len(body.get("elem", [])) >= args.mappings + 2)  # + the two above

    wait_until(all_in_kernel, timeout=120, interval=0.2, what="all mappings in the kernel")
    applied = time.monotonic() - before
    print(
        f"{args.mappings} mappings: registered in {took:.1f} s "
        f"({took / args.mappings * 1000:.1f} ms each through the tunnel API), "
        f"all in the kernel after {applied:.1f} s"
    )
    crowded = mbits(iperf(inet.run, public, PORT, s))
    print(
        f"TCP through one mapping with {args.mappings + 1} present: {crowded} Mbit/s "
        f"against {mapped} with one ({crowded / mapped:.2f}x)"
    )
    expose.send_signal(2)
    expose.wait(timeout=10)
    del client


if __name__ == "__main__":
    main()

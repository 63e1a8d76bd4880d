"""Classification figures (issue 19), in one run, in namespaces it creates and removes.

Run as root from the repository root:

    .venv/bin/python bench/classify_bench.py             # about a minute
    .venv/bin/python bench/classify_bench.py --flows 3000 --seconds 5

1. The parsers alone: verdicts per second on first packets of real clients (curl TLS,
   curl HTTP, ssh, aioquic, aria2's handshake and DHT), against `packets.parse` of the
   same bytes wrapped in IPv4/TCP (what the reader does for every packet anyway).
2. Through the kernel (a client routed by the server namespace to `inet`): new TCP flows
   per second opened by one client, with the queue rules and the reader against without
   them, alternating rounds; the first packet's round trip (connect time) p50/p99 both
   ways; bulk TCP throughput (iperf3) with and without; the reader's CPU while 1,000 new
   flows a second arrive for 10 s.
It prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import captures
from tests.netns.router import queued, route_client, start_reader, steer
from tests.netns.topology import Client, Topology

from netns_run import cpu_seconds
from wirewarden.domain.classify.flows import classify
from wirewarden.domain.classify.packets import parse

# Opens `count` TCP connections to host:port one after another, each sending an HTTP
# request line and closing; prints the connect times (ms) as JSON.
_FLOWS = """
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
times = []
start = time.perf_counter()
for _ in range(count):
    t = time.perf_counter()
    s = socket.create_connection((host, port), timeout=5)
    times.append((time.perf_counter() - t) * 1000)
    s.sendall(b"GET / HTTP/1.1\\r\\nHost: bench.test\\r\\n\\r\\n")
    s.close()
print(json.dumps({"seconds": time.perf_counter() - start, "connect_ms": times}))
"""

# Opens TCP connections to host:port at `rate` a second for `seconds` (each sends an
# HTTP request line and closes); prints how many it opened and in how long, as JSON.
_PACED = """
import json, socket, sys, time
host, port, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
start, opened = time.perf_counter(), 0
while time.perf_counter() - start < seconds:
    due = start + opened / rate
    if time.perf_counter() < due:
        time.sleep(due - time.perf_counter())
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\\r\\nHost: bench.test\\r\\n\\r\\n")
    s.close()
    opened += 1
print(json.dumps({"opened": opened, "seconds": time.perf_counter() - start}))
"""

# A TCP sink in `inet`: accepts, reads what comes, closes.
_SINK = """
import socket, sys, threading
srv = socket.create_server((sys.argv[1], int(sys.argv[2])), backlog=512)
def drain(c):
    with c:
        c.settimeout(2)
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
while True:
    c, _ = srv.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
"""
SINK_PORT = 7071


def parsers(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        handshakes, dht, _ = captures.aria2_first_packets(Path(work))
    samples = [
        ("tcp", captures.curl_https("bench.example.test")),
        ("tcp", captures.curl_http("bench.example.test")),
        ("tcp", captures.ssh_banner()),
        ("udp", captures.quic_initial("bench.example.test")),
        ("tcp", handshakes[1]),
        ("udp", dht),
    ]
    wrapped = [_ipv4_tcp(payload) for _, payload in samples]
    start = time.perf_counter()
    for _ in range(rounds):
        for proto, payload in samples:
            classify(proto, [payload])  # type: ignore[arg-type]
    per_second = rounds * len(samples) / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(rounds):
        for raw in wrapped:
            parse(raw)
    parse_rate = rounds * len(wrapped) / (time.perf_counter() - start)
    print(f"parsers: {per_second:,.0f} verdicts/s over 6 real first packets "
          f"(IP/TCP header parse alone: {parse_rate:,.0f}/s)")  # fmt: skip
    for name, (proto, payload) in zip(
        ("tls", "http", "ssh", "quic", "bittorrent", "dht"), samples, strict=True
    ):
        start = time.perf_counter()
        for _ in range(rounds):
            classify(proto, [payload])  # type: ignore[arg-type]
        print(f"  {name:<10} {rounds / (time.perf_counter() - start):>10,.0f} verdicts/s")


def _ipv4_tcp(payload: bytes) -> bytes:
    ip = bytes([0x45, 0]) + (40 + len(payload)).to_bytes(2, "big") + bytes(5) + b"\x06"
    ip += bytes(2) + bytes([10, 0, 0, 1, 10, 0, 0, 2])
    tcp = (40000).to_bytes(2, "big") + (443).to_bytes(2, "big") + bytes(8) + b"\x50" + bytes(7)
    return ip + tcp + payload


def flows(topology: Topology, client: Client, count: int) -> dict[str, float]:
    out = client.ns.run(
        [sys.executable, "-c", _FLOWS, topology.inet_ip, str(SINK_PORT), str(count)],
        timeout=count,
    ).stdout
    result = json.loads(out)
    times = sorted(result["connect_ms"])
    return {
        "flows_per_s": count / result["seconds"],
        "p50_ms": statistics.median(times),
        "p99_ms": times[int(len(times) * 0.99) - 1],
    }


def reader_cpu(topology: Topology, client: Client, reader: int, rate: float) -> None:
    """The queue reader's CPU while new flows arrive at `rate` a second for 10 s."""
    argv = [sys.executable, "-c", _PACED, topology.inet_ip, str(SINK_PORT), str(rate), "10"]
    before = cpu_seconds(reader)
    result = json.loads(client.ns.run(argv, timeout=60).stdout)
    used = cpu_seconds(reader) - before
    took = result["seconds"]
    print(f"  the reader at {result['opened'] / took:,.0f} new flows/s (asked {rate:,.0f}) "
          f"for {took:.1f} s: {used / took * 100:.1f} % of a core")  # fmt: skip


def mbits(client: Client, topology: Topology, seconds: float) -> float:
    report = client.iperf3(topology.inet_ip, seconds=seconds)
    return float(report["end"]["sum_received"]["bits_per_second"]) / 1e6


def kernel(count: int, seconds: float, rounds: int) -> None:
    with Topology() as topology:
        client = route_client(topology)
        topology.inet.popen(
            [sys.executable, "-c", _SINK, topology.inet_ip, str(SINK_PORT)],
            log_path=topology.log_path("sink.log"),
        )
        topology.inet.wait_listening(topology.inet_ip, SINK_PORT)
        reader = start_reader(topology)
        figures: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for _ in range(rounds):
            for on in (False, True):
                steer(topology, client, on)
                row = flows(topology, client, count)
                row["mbit_s"] = mbits(client, topology, seconds)
                figures[on].append(row)
        print(f"kernel: {count} new TCP flows per round, {rounds} rounds each way, "
              f"{queued(topology)} packets queued in all")  # fmt: skip
        for on in (False, True):
            rows = figures[on]
            label = "classified" if on else "plain     "
            med = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
            print(f"  {label} {med['flows_per_s']:>8,.0f} flows/s  connect p50 "
                  f"{med['p50_ms']:.2f} ms p99 {med['p99_ms']:.2f} ms  "
                  f"iperf3 {med['mbit_s']:,.0f} Mbit/s")  # fmt: skip
        steer(topology, client, True)
        reader_cpu(topology, client, reader.pid, 1000)
        plain = statistics.median(r["mbit_s"] for r in figures[False])
        classified = statistics.median(r["mbit_s"] for r in figures[True])
        print(f"  throughput ratio classified/plain: {classified / plain:.3f}")
        reader.terminate()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parser-rounds", type=int, default=20000)
    args = parser.parse_args()
    with open("/proc/loadavg") as load:
        print(f"load average: {load.read().split()[0]}")
    parsers(args.parser_rounds)
    kernel(args.flows, args.seconds, args.rounds)


if __name__ == "__main__":
    main()

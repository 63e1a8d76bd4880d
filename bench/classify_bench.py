"""Classification figures (issue 19), in one run, in namespaces it creates and removes.

Run as root from the repository root:

    .venv/bin/python bench/classify_bench.py             # about a minute
    .venv/bin/python bench/classify_bench.py --flows 3000 --seconds 5

1. The parsers alone: verdicts per second on first packets of real clients (curl TLS,
   curl HTTP, ssh, aioquic, aria2's handshake and DHT), against `packets.parse` of the
   same bytes wrapped in IPv4/TCP (what the reader does for every packet anyway).
2. Through the kernel (a client routed by the server namespace to `inet`): new TCP flows
   per second opened by several client processes at once, with the queue rules and the
   reader against without them, alternating rounds; each flow's connect time and the time
   from its request (the payload the reader decides on) to the sink's answer, p50/p99
   both ways; packets queued a flow; bulk TCP throughput (iperf3) with and without; the
   reader's CPU while 1,000 new flows a second arrive for 10 s.
It prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import captures
from tests.netns.router import queued, route_client, start_reader, steer
from tests.netns.topology import Client, Topology

from netns_run import cpu_seconds
from wirewarden.domain.classify.flows import classify
from wirewarden.domain.classify.packets import parse

# Opens `count` TCP connections to host:port one after another, each sending an HTTP
# request line, waiting for the sink's one-byte answer and closing; prints its wall-clock
# start and end, the connect times and the request-to-answer times (ms) as JSON. Several
# run at once to open flows faster than one Python loop can.
_FLOWS = """
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
connect, answer = [], []
start = time.time()
for _ in range(count):
    t = time.perf_counter()
    s = socket.create_connection((host, port), timeout=5)
    t2 = time.perf_counter()
    s.sendall(b"GET / HTTP/1.1\\r\\nHost: bench.test\\r\\n\\r\\n")
    s.recv(1)
    answer.append((time.perf_counter() - t2) * 1000)
    connect.append((t2 - t) * 1000)
    s.close()
print(json.dumps({"start": start, "end": time.time(), "connect_ms": connect, "answer_ms": answer}))
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

# A TCP sink in `inet`: processes sharing one listening socket, each accepting, reading
# the request, answering one byte and closing, so no client waits on another's turn.
_SINK = """
import os, socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(4096)
for _ in range(int(sys.argv[3]) - 1):
    if os.fork() == 0:
        break
while True:
    c, _ = srv.accept()
    try:
        c.settimeout(2)
        c.recv(65536)
        c.sendall(b".")
    except OSError:
        pass
    c.close()
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


def flows(topology: Topology, client: Client, count: int, clients: int) -> dict[str, float]:
    """`count` new flows opened by `clients` processes at once: flows a second over the
    whole span, and each flow's connect and request-to-answer times."""
    argv = [sys.executable, "-c", _FLOWS, topology.inet_ip, str(SINK_PORT), str(count // clients)]
    with ThreadPoolExecutor(clients) as pool:
        outs = list(pool.map(lambda _: client.ns.run(argv, timeout=count).stdout, range(clients)))
    results = [json.loads(out) for out in outs]
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    row = {"flows_per_s": clients * (count // clients) / span}
    for key in ("connect", "answer"):
        times = sorted(t for r in results for t in r[f"{key}_ms"])
        row[f"{key}_p50"] = statistics.median(times)
        row[f"{key}_p99"] = times[int(len(times) * 0.99) - 1]
    return row


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


def kernel(count: int, clients: int, seconds: float, rounds: int) -> None:
    with Topology() as topology:
        client = route_client(topology)
        # Room for bursts of handshakes, and ports for every round's flows.
        topology.inet.run(["sysctl", "-qw", "net.core.somaxconn=4096"])
        topology.inet.run(["sysctl", "-qw", "net.ipv4.tcp_max_syn_backlog=4096"])
        client.ns.run(["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000"])
        topology.inet.popen(
            [sys.executable, "-c", _SINK, topology.inet_ip, str(SINK_PORT), str(clients)],
            log_path=topology.log_path("sink.log"),
        )
        topology.inet.wait_listening(topology.inet_ip, SINK_PORT)
        reader = start_reader(topology)
        figures: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for _ in range(rounds):
            for on in (False, True):
                steer(topology, client, on)
                before = queued(topology) if on else 0
                row = flows(topology, client, count, clients)
                row["queued_per_flow"] = (queued(topology) - before) / count if on else 0.0
                row["mbit_s"] = mbits(client, topology, seconds)
                figures[on].append(row)
        print(f"kernel: {count} new TCP flows per round from {clients} clients at once, "
              f"{rounds} rounds each way (medians)")  # fmt: skip
        for on in (False, True):
            rows = figures[on]
            label = "classified" if on else "plain     "
            med = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
            print(f"  {label} {med['flows_per_s']:>8,.0f} flows/s  connect p50/p99 "
                  f"{med['connect_p50']:.2f}/{med['connect_p99']:.2f} ms  request answered "
                  f"p50/p99 {med['answer_p50']:.2f}/{med['answer_p99']:.2f} ms  "
                  f"{med['queued_per_flow']:.2f} packets queued a flow  "
                  f"iperf3 {med['mbit_s']:,.0f} Mbit/s")  # fmt: skip
        steer(topology, client, True)
        reader_cpu(topology, client, reader.pid, 1000)
        plain = statistics.median(r["mbit_s"] for r in figures[False])
        classified = statistics.median(r["mbit_s"] for r in figures[True])
        print(f"  throughput ratio classified/plain: {classified / plain:.3f}")
        reader.terminate()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parser-rounds", type=int, default=20000)
    args = parser.parse_args()
    with open("/proc/loadavg") as load:
        print(f"load average: {load.read().split()[0]}")
    parsers(args.parser_rounds)
    kernel(args.flows, args.clients, args.seconds, args.rounds)


if __name__ == "__main__":
    main()

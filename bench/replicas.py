"""API throughput of two control-plane replicas against one (issue 17: target >= 1.6x).

Two `wirewarden serve` processes on one private PostgreSQL (same database URL, same master
key; each its own data dir and port), the peers of the fleet's one node (not theirs:
neither has a kernel to keep). wrk (C, little CPU of its own) asks for a page of 100 peers
with an admin token as fast as `--connections` connections allow, for `--seconds`: once
against replica A alone (B stopped with SIGSTOP, as if it did not exist), once against
both (half of the connections each, as a load balancer would spread them), alternating
for `--rounds` rounds. Prints requests/s of each round, the medians and their ratio, with
the CPU each process (A, B, PostgreSQL, wrk) used: on a machine with fewer cores than
replicas + database, the ratio says how much of the CPU the replicas could get, not how
the design scales.

    sudo .venv/bin/python bench/replicas.py [--peers 1000] [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))

from tests.pg import Cluster, unavailable  # noqa: E402

from fleet_sim import populate, start_serve  # noqa: E402
from netns_run import cpu_seconds, log, run_in_netns  # noqa: E402
from wirewarden.bootstrap import build  # noqa: E402
from wirewarden.config import Settings  # noqa: E402
from wirewarden.dataplane.fake import FakeDataplane  # noqa: E402

REPLICAS = {"A": "127.0.0.1:8000", "B": "127.0.0.1:8001"}
PAGE = "/api/v1/interfaces/wn000/peers?limit=100"
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")


def start(name: str, listen: str, work: Path, url: str) -> subprocess.Popen[bytes]:
    data = work / name
    if name != "A":  # every replica seals and opens secrets with the same master key
        data.mkdir(parents=True, exist_ok=True)
        shutil.copy2(work / "A" / "master.key", data / "master.key")
    env = {
        "WIREWARDEN_DATA_DIR": str(data),
        "WIREWARDEN_DATABASE_URL": url,
        "WIREWARDEN_HTTP": listen,
        "WIREWARDEN_NODE_NAME": "cp",
        "WIREWARDEN_LOG_LEVEL": "warning",
    }
    return start_serve(env, work / f"{name}.log")


def wrk(listen: str, connections: int, seconds: int, token: str) -> subprocess.Popen[str]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["-H", f"Authorization: Bearer {token}", f"http://{listen}{PAGE}"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def postgres_cpu(cluster: Cluster) -> float:
    """CPU seconds so far of the private cluster: its postmaster, the children it has
    (backends, writers) and those that ended (counted in the postmaster's cutime)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = cpu_seconds(postmaster, ended_children=True)
    children = subprocess.run(
        ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in map(int, children):
        try:
            total += cpu_seconds(pid)
        except FileNotFoundError:
            continue
    return total


def one_round(
    targets: list[str],
    args: argparse.Namespace,
    token: str,
    procs: dict[str, int],
    cluster: Cluster,
) -> tuple[float, dict[str, float]]:
    """Requests/s over the round and each process's share of a core."""
    before = {name: cpu_seconds(pid) for name, pid in procs.items()}
    pg_before = postgres_cpu(cluster)
    share = args.connections // len(targets)
    runs = [wrk(REPLICAS[t], share, args.seconds, token) for t in targets]
    outputs = [r.communicate()[0] for r in runs]
    rate = 0.0
    for out in outputs:
        found = _RATE.search(out)
        if not found:
            raise RuntimeError(out)
        rate += float(found.group(1))
    used = {name: (cpu_seconds(pid) - before[name]) / args.seconds for name, pid in procs.items()}
    used["PostgreSQL"] = (postgres_cpu(cluster) - pg_before) / args.seconds
    return rate, used


def measure(args: argparse.Namespace, work: Path, url: str, token: str, cluster: Cluster) -> None:
    a = start("A", REPLICAS["A"], work, url)
    b = start("B", REPLICAS["B"], work, url)
    procs = {"A": a.pid, "B": b.pid}
    results: dict[str, list[float]] = {"one": [], "two": []}
    try:
        for target in REPLICAS.values():  # warm both (first queries, caches)
            wrk(target, 4, 2, token).communicate()
        for r in range(args.rounds):
            b.send_signal(signal.SIGSTOP)
            rate, used = one_round(["A"], args, token, procs, cluster)
            results["one"].append(rate)
            log(f"round {r + 1} one replica: {rate:.0f} req/s; CPU {fmt(used)}")
            b.send_signal(signal.SIGCONT)
            time.sleep(1)
            rate, used = one_round(["A", "B"], args, token, procs, cluster)
            results["two"].append(rate)
            log(f"round {r + 1} two replicas: {rate:.0f} req/s; CPU {fmt(used)}")
    finally:
        b.send_signal(signal.SIGCONT)
        for proc in (a, b):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    one, two = statistics.median(results["one"]), statistics.median(results["two"])
    log(f"median: one replica {one:.0f} req/s, two replicas {two:.0f} req/s: {two / one:.2f}x")


def fmt(used: dict[str, float]) -> str:
    return ", ".join(f"{name} {share * 100:.0f} %" for name, share in used.items())


def inner(args: argparse.Namespace) -> int:
    why = unavailable()
    if why:
        log(why)
        return 1
    log(f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.2f}")
    cluster = Cluster.start()
    try:
        url = cluster.url(cluster.create_database())
        work = Path(args.workdir)
        settings = Settings(data_dir=work / "A", database_url=url, node_name="cp")
        build(settings, dataplane=FakeDataplane(), runtime=False).engine.dispose()
        _, _, token = populate(settings, 1, args.peers, "bulk")
        log(f"page: GET {PAGE} ({args.peers} peers), {args.connections} connections")
        measure(args, work, url, token, cluster)
        log(f"load average at end {os.getloadavg()[0]:.2f}")
        return 0
    finally:
        cluster.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peers", type=int, default=1000)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not args.inner:
        return run_in_netns(HERE, "wwrepl", ("wrk",))
    return inner(args)


if __name__ == "__main__":
    sys.exit(main())

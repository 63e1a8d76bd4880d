"""DNS filter benchmark: WireWarden's resolver beside Unbound, same machine, same run.

    .venv/bin/python bench/dns_bench.py [--seconds 8] [--names 10000] [--list-size 1000000]

Everything listens on 127.0.0.1 only. It measures, with dnsperf:
  1. cached answers: QPS and p99 latency, WireWarden vs Unbound answering the same
     names from cache (both forward to the same fake authoritative server, warmed first);
  2. blocked answers: WireWarden's policy deny rules vs Unbound local-zones for the
     same names;
  3. a 1,000,000-domain list: WireWarden load time and added RSS (the resolver's own
     list loader in a fresh process) vs Unbound started with the same names as
     local-zones (time until it answers, RSS above an empty Unbound);
  4. a reload of that list under full query load: dnsperf's lost-query count.

The WireWarden side is the real DnsRuntime (uvloop thread, fast path, cache, query
log written to a SQLite database by its writer process, as in `serve`), run in a child
process of this script.

Diagnostics: `--probe` has the resolver print, each second, its event loop's worst lag,
its CPU time and its garbage collections (each one over 2 ms with its CPU time);
`--log-thread` writes the query log from a thread of the resolver's process instead (the
old way; the probe then also shows the writes), `--log-discard` not at all; `--echo`
answers every query with its own bytes (the listener and sockets alone: the ceiling any
work on the answer path could reach); `--only cached|blocked` runs one of the two QPS parts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
FAKE_PORT, WW_PORT, UNBOUND_PORT = 5399, 5353, 5354
PROBE = False  # --probe: the resolver prints its loop lag each second (stderr)
SERVE_FLAGS = ("probe", "log_discard", "log_thread", "echo")  # passed on to `serve`
SERVING: list[str] = []  # those given, as arguments of `serve`


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_answering(port: int, timeout: float = 120.0) -> float:
    """Seconds until a UDP query to 127.0.0.1:port gets any answer."""
    query = bytes.fromhex("abcd01000001000000000000") + b"\x05probe\x07example\x00\x00\x01\x00\x01"
    started = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while time.monotonic() - started < timeout:
            sock.sendto(query, (HOST, port))
            try:
                sock.recv(512)
                return time.monotonic() - started
            except OSError:
                time.sleep(0.05)
    raise TimeoutError(f"nothing answers on port {port}")


# ----------------------------------------------------------------- the WireWarden side


def serve_wirewarden(args: argparse.Namespace) -> None:
    """Child process: the resolver with a policy denying the list, query log to SQLite."""
    from sqlalchemy import create_engine

    from wirewarden.dns.cache import CacheLimits
    from wirewarden.dns.lists import ListStore
    from wirewarden.dns.runtime import DnsConfig, DnsRuntime, Ports
    from wirewarden.dns.upstream import UpstreamSet, parse_upstreams
    from wirewarden.domain.dnsstate import DnsDirectory, PolicySpec
    from wirewarden.store import schema
    from wirewarden.store.db import make_sessions
    from wirewarden.store.dns import DnsStore, log_ports

    work = Path(args.work)
    url = f"sqlite:///{work / 'ww.db'}"
    engine = create_engine(url)
    schema.upgrade(engine)
    store = DnsStore(make_sessions(engine), "bench")
    # The list file is a local list: named inside the store's local-lists directory.
    source = Path(args.list).name
    lists = ListStore(work / "lists", local_dir=Path(args.list).parent)
    lists.fetch(source)
    revision = [1]
    spec = PolicySpec("default", blocklists=(source,), anti_bypass=True)

    def directory() -> DnsDirectory:
        return DnsDirectory(revision[0], (), (), {}, {"default": spec})

    write_log = store.write_log
    if args.log_discard:
        write_log = lambda records: None  # noqa: E731
    if args.probe:
        write_log = _timed_writer(write_log)
    ports = Ports(lambda: revision[0], directory, write_log, store.prune_log)
    if not args.log_thread and not args.log_discard:  # as `serve` does (bootstrap.build_dns)
        ports.log_process = partial(log_ports, url, "bench")
    config = DnsConfig(
        port=args.port, extra_listen=(HOST,), allow_any_source=True, cache=CacheLimits()
    )
    runtime = DnsRuntime(config, UpstreamSet(parse_upstreams(args.upstream)), lists, ports)
    if args.echo:  # the listener reads `resolver.handle` at each burst
        runtime.resolver.handle = lambda data, ip, tcp: data  # type: ignore[method-assign]

    def reload() -> None:
        lists.fetch(source)  # the list changed on disk: validate, copy, then swap
        runtime.reload_lists()

    wanted = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)  # before any thread starts
    runtime.start()
    if args.probe:
        _start_probe(runtime)
    print(json.dumps({"ready": True, "rss_kb": rss_kb(os.getpid())}), flush=True)
    while signal.sigwait(wanted) == signal.SIGHUP:
        threading.Thread(target=reload).start()
    runtime.stop()


_WRITES: list[tuple[float, float, int]] = []  # (start, seconds, rows) of each write_log call


def _timed_writer(write: Any) -> Any:
    def timed(records: Any) -> None:
        started = time.monotonic()
        write(records)
        _WRITES.append((started, time.monotonic() - started, len(records)))

    return timed


def _start_probe(runtime: Any) -> None:
    """An event-loop lag probe (--probe): a 1 ms timer on the resolver's loop; each
    second, its worst lateness, the log writer's busy time and rows go to stderr."""
    import asyncio
    import gc

    gcs: list[tuple[int, float]] = []  # (generation, seconds) of each collection
    started = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0], started[1] = time.perf_counter(), time.thread_time()
        else:
            took = time.perf_counter() - started[0]
            gcs.append((info["generation"], took))
            if took > 0.002:
                cpu = round((time.thread_time() - started[1]) * 1000, 1)
                slow = {"gen": info["generation"], "ms": round(took * 1000, 1), "cpu_ms": cpu}
                print("gc", round(time.time() % 1000, 2), slow, file=sys.stderr, flush=True)

    gc.callbacks.append(on_gc)

    async def probe() -> None:
        worst, window = 0.0, time.monotonic()
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.001)
            worst = max(worst, time.monotonic() - before - 0.001)
            if before - window >= 1.0:
                writes = [w for w in _WRITES if w[0] >= window]
                _WRITES[:] = []
                line = {
                    "t": round(time.time() % 1000, 1),
                    "lag_ms": round(worst * 1000, 1),
                    "write_ms": round(sum(w[1] for w in writes) * 1000),
                    "rows": sum(w[2] for w in writes),
                    "cpu_s": round(time.process_time(), 2),
                    "gc_max_ms": round(max((g[1] for g in gcs), default=0) * 1000, 1),
                    "gc2": sum(1 for g in gcs if g[0] == 2),
                    "gcs": len(gcs),
                }
                gcs[:] = []
                print("probe", json.dumps(line), file=sys.stderr, flush=True)
                worst, window = 0.0, before

    asyncio.run_coroutine_threadsafe(probe(), runtime._loop)


def load_only(args: argparse.Namespace) -> None:
    """Child process: the resolver's own loader on one list; time and RSS it adds."""
    from wirewarden.dns.lists import ListStore
    from wirewarden.domain.dnsrules import compile_policy

    # The copy was fetched (validated and kept) by the parent: this is a start of `serve`
    # loading the last good copy from disk.
    store = ListStore(Path(args.work) / "lists-load")
    source = Path(args.list).name  # fetched by the parent as a local list of that name
    status = store.status(source)
    before = rss_kb(os.getpid())
    started = time.perf_counter()
    compiled = store.load(source)
    policy = compile_policy("p", (), (), "nxdomain", True, [compiled] if compiled else [])
    seconds = time.perf_counter() - started
    after = rss_kb(os.getpid())
    assert compiled is not None and policy.name == "p"
    print(
        json.dumps({"entries": status.entries, "seconds": seconds, "added_rss_kb": after - before})
    )


SHAPES = ("set of str", "set of 64-bit hashes", "sorted array of hashes (used)")


def structures(args: argparse.Namespace) -> None:
    """Child process: one candidate structure built from the list file (nothing else kept);
    the RSS it adds and its lookup time."""
    import gc
    from array import array
    from bisect import bisect_left

    def names() -> Any:
        with open(args.list) as handle:
            for line in handle:
                if line.strip() and line[0] != "#":
                    yield line.split()[-1]

    gc.collect()
    before = rss_kb(os.getpid())
    if args.shape == SHAPES[0]:
        built: Any = set(names())
        lookup: Any = built.__contains__
    elif args.shape == SHAPES[1]:
        built = {hash(n) for n in names()}
        lookup = lambda n: hash(n) in built  # noqa: E731
    else:
        built = array("q", sorted(hash(n) for n in names()))

        def lookup(name: str) -> bool:
            key = hash(name)
            at = bisect_left(built, key)
            return at < len(built) and built[at] == key

    gc.collect()
    added = (rss_kb(os.getpid()) - before) / 1024
    probe = [n for i, n in enumerate(names()) if i % 10 == 0][:100_000]
    started = time.perf_counter()
    hits = sum(1 for n in probe if lookup(n))
    per = (time.perf_counter() - started) / len(probe) * 1e6
    print(json.dumps({"added_rss_mb": round(added, 1), "lookup_us": round(per, 2), "hits": hits}))


# ----------------------------------------------------------------- the bench


def names(count: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:06d}.bench.example" for i in range(count)]


def query_file(path: Path, hosts: list[str]) -> Path:
    path.write_text("".join(f"{h} A\n" for h in hosts))
    return path


def dnsperf(port: int, data: Path, seconds: float | None, *extra: str) -> dict[str, Any]:
    argv = ["dnsperf", "-s", HOST, "-p", str(port), "-d", str(data), "-c", "4", *extra]
    argv += ["-l", str(seconds)] if seconds else ["-n", "1"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    latencies = sorted(float(x) for x in re.findall(r"^> \S+ \S+ \S+ ([\d.]+)$", out, re.M))
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    return {"qps": round(qps), "p99_ms": round(p99, 2), "lost": lost, "sent": sent}


def unbound_conf(work: Path, port: int, zones: list[str] | Path, name: str) -> Path:
    lines = [
        "server:",
        f"  interface: {HOST}",
        f"  port: {port}",
        "  num-threads: 1",
        "  do-daemonize: no",
        '  chroot: ""',
        '  username: ""',
        f'  directory: "{work}"',
        f'  pidfile: "{work}/{name}.pid"',
        "  use-syslog: no",
        "  verbosity: 0",
        "  do-not-query-localhost: no",
        "  access-control: 127.0.0.0/8 allow",
        "  msg-cache-size: 64m",
        "  rrset-cache-size: 128m",
        "  module-config: iterator",
        "  qname-minimisation: no",
        "  minimal-responses: yes",
        "  harden-referral-path: no",
    ]
    if isinstance(zones, Path):
        lines.append(f'  include: "{zones}"')
    else:
        lines += [f'  local-zone: "{z}." always_nxdomain' for z in zones]
    lines += ["forward-zone:", '  name: "."', f"  forward-addr: {HOST}@{FAKE_PORT}"]
    path = work / f"{name}.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


class Proc:
    def __init__(self, argv: list[str], **kw: Any) -> None:
        self.proc = subprocess.Popen(argv, **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_wirewarden(work: Path, list_path: Path) -> tuple[Proc, int]:
    argv = [sys.executable, __file__, "serve", "--work", str(work), "--list", str(list_path)]
    argv += ["--port", str(WW_PORT), "--upstream", f"udp://{HOST}:{FAKE_PORT}"]
    argv += SERVING
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = Proc(argv, stdout=subprocess.PIPE, text=True, env=env)
    line = proc.proc.stdout.readline()  # type: ignore[union-attr]
    ready = json.loads(line)
    wait_answering(WW_PORT)
    return proc, int(ready["rss_kb"])


def write_million(path: Path, count: int) -> None:
    rng = random.Random(42)
    letters = string.ascii_lowercase + string.digits
    with path.open("w") as out:
        out.write("# generated bench list\n")
        for i in range(count):
            label = "".join(rng.choices(letters, k=rng.randint(5, 12)))
            out.write(f"0.0.0.0 {label}.ww{i:08d}.example\n")


def million_unbound(work: Path, list_path: Path) -> dict[str, Any]:
    zones = work / "million-zones.conf"
    with list_path.open() as src, zones.open("w") as out:
        for line in src:
            parts = line.split()
            if len(parts) == 2:
                out.write(f'local-zone: "{parts[1]}." always_nxdomain\n')
    empty = Proc(["unbound", "-d", "-c", str(unbound_conf(work, UNBOUND_PORT, [], "empty"))])
    try:
        wait_answering(UNBOUND_PORT)
        base = rss_kb(empty.proc.pid)
    finally:
        empty.stop()
    started = time.monotonic()
    full = Proc(["unbound", "-d", "-c", str(unbound_conf(work, UNBOUND_PORT, zones, "full"))])
    try:
        wait_answering(UNBOUND_PORT, timeout=600)
        seconds = time.monotonic() - started
        return {
            "seconds": round(seconds, 2),
            "added_rss_mb": round((rss_kb(full.proc.pid) - base) / 1024, 1),
        }
    finally:
        full.stop()


def run(args: argparse.Namespace) -> None:
    for tool in ("dnsperf", "unbound"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (scripts/setup.sh installs it)")
    work = Path(tempfile.mkdtemp(prefix="ww-dnsbench-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fake = Proc(
        [sys.executable, "-m", "tests.dnsfake", HOST, str(FAKE_PORT)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    procs: list[Proc] = [fake]
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} cores, shared"}
    try:
        wait_answering(FAKE_PORT)
        cached = query_file(work / "cached.txt", names(args.names, "c"))
        blocked_names = names(args.names, "b")
        blocked = query_file(work / "blocked.txt", blocked_names)
        small_list = work / "blocked-list.txt"
        small_list.write_text("".join(f"{n}\n" for n in blocked_names))

        if not args.skip_qps:
            ww, _ = start_wirewarden(work, small_list)
            procs.append(ww)
            ub = Proc(
                ["unbound", "-d", "-c", str(unbound_conf(work, UNBOUND_PORT, blocked_names, "ub"))]
            )
            procs.append(ub)
            wait_answering(UNBOUND_PORT)
            for port in (WW_PORT, UNBOUND_PORT):
                dnsperf(port, cached, None)  # warm the caches: one pass over every name
            for label, data in (("cached", cached), ("blocked", blocked)):
                if args.only and label != args.only:
                    continue
                for who, port in (("wirewarden", WW_PORT), ("unbound", UNBOUND_PORT)):
                    if PROBE:
                        print("phase", label, who, round(time.time() % 1000, 1), flush=True)
                    results[f"{label}_{who}"] = dnsperf(port, data, args.seconds, "-v")
                    print(label, who, results[f"{label}_{who}"], flush=True)
                    # Latency below saturation: at full speed p99 is mostly dnsperf's queue.
                    if PROBE:
                        print("phase paced", label, who, round(time.time() % 1000, 1), flush=True)
                    paced = dnsperf(port, data, args.seconds / 2, "-v", "-Q", str(args.paced_qps))
                    results[f"{label}_{who}_paced"] = paced
                    print(label, who, f"at {args.paced_qps}/s", paced, flush=True)
                ratio = results[f"{label}_wirewarden"]["qps"] / max(
                    results[f"{label}_unbound"]["qps"], 1
                )
                results[f"{label}_ratio"] = round(ratio, 3)
            ww.stop()
            ub.stop()

        if args.skip_million:
            return
        million = work / "million.txt"
        write_million(million, args.list_size)
        from wirewarden.dns.lists import ListStore

        # A local list is a name inside the store's local-lists directory.
        store = ListStore(work / "lists-load", local_dir=million.parent)
        fetched = store.fetch(million.name)
        assert fetched.error is None, fetched.error
        load = subprocess.run(
            [sys.executable, __file__, "load", "--work", str(work), "--list", str(million)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        figures = json.loads(load.stdout)
        results["million_wirewarden"] = {
            "entries": figures["entries"],
            "seconds": round(figures["seconds"], 2),
            "added_rss_mb": round(figures["added_rss_kb"] / 1024, 1),
        }
        print("million wirewarden", results["million_wirewarden"], flush=True)
        results["million_structures"] = {
            shape: json.loads(
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "structures",
                        "--list",
                        str(million),
                        *("--shape", shape),
                    ],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=True,
                ).stdout
            )
            for shape in SHAPES
        }
        print("million structures", results["million_structures"], flush=True)
        results["million_unbound"] = million_unbound(work, million)
        print("million unbound", results["million_unbound"], flush=True)

        # Reload the million list under full load: dnsperf counts what never came back.
        ww, _ = start_wirewarden(work, million)
        procs.append(ww)
        mixed = work / "mixed.txt"
        mixed.write_text(cached.read_text() + blocked.read_text())
        dnsperf(WW_PORT, mixed, None)  # warm: every name answered from cache from now on
        load_run: dict[str, Any] = {}

        def under_load() -> None:
            load_run.update(dnsperf(WW_PORT, mixed, args.seconds + 6))

        runner = threading.Thread(target=under_load)
        runner.start()
        time.sleep(2)
        with million.open("a") as out:
            out.write("0.0.0.0 added-by-reload.example\n")
        ww.proc.send_signal(signal.SIGHUP)
        runner.join()
        results["reload_under_load"] = load_run
        print("reload under load", load_run, flush=True)
    finally:
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "mode", nargs="?", default="bench", choices=["bench", "serve", "load", "structures"]
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--names", type=int, default=10_000)
    parser.add_argument("--list-size", type=int, default=1_000_000)
    parser.add_argument("--work")
    parser.add_argument("--list")
    parser.add_argument("--port", type=int, default=WW_PORT)
    parser.add_argument("--upstream")
    parser.add_argument("--shape", choices=SHAPES, default=SHAPES[-1])
    parser.add_argument("--skip-qps", action="store_true", help="only the 1M-list parts")
    parser.add_argument("--skip-million", action="store_true", help="only the QPS parts")
    parser.add_argument("--probe", action="store_true", help="print the resolver's loop lag")
    parser.add_argument("--log-discard", action="store_true", help="do not write the query log")
    parser.add_argument("--log-thread", action="store_true", help="query log writer in a thread")
    parser.add_argument("--echo", action="store_true", help="answer each query with itself")
    parser.add_argument("--only", choices=["cached", "blocked"], help="one of the QPS parts")
    parser.add_argument("--paced-qps", type=int, default=5000, help="rate for the p99 runs")
    args = parser.parse_args()
    global PROBE
    PROBE = args.probe
    SERVING[:] = [f"--{flag.replace('_', '-')}" for flag in SERVE_FLAGS if getattr(args, flag)]
    modes = {"bench": run, "serve": serve_wirewarden, "load": load_only, "structures": structures}
    modes[args.mode](args)


if __name__ == "__main__":
    main()

"""Core control-plane figures at 10,000 peers on one interface (DESIGN.md §7).

Run as root from the repository root:

    .venv/bin/python bench/core_10k.py            # the full run, about 3-4 minutes
    .venv/bin/python bench/core_10k.py --peers 1000 --extra 50 --rounds 1   # a quick look

What it does, all inside a network namespace it creates and removes itself (every process
left in it is killed at the end, also on failure or Ctrl-C; the only traffic is HTTP to
127.0.0.1 inside the namespace):

1. a fresh data dir; `wirewarden serve` with WIREWARDEN_DATA_DIR, WIREWARDEN_HTTP and
   WIREWARDEN_PUBLIC_HOST=192.0.2.1; an interface with a /16 through the REST API;
2. N peers (default 10,000) created through the REST API with httpx: total time, peers/s;
3. "one more peer, API call to kernel applied": `--extra` (200) more sequential POSTs from
   each of two clients, alternating (stdlib http.client, lean like curl; httpx, which adds
   its own ~1.5 ms), p50/p99 of their latency and serve's own mean (its request
   histogram), then `wg show <if> dump` checks every one is in the device;
4. list page of 100 peers with live stats (GET .../peers?limit=100&offset=N): p50/p95/max
   over `--list-requests` (200) random pages, plus a few pages with the stats cache cold;
5. serve RSS (VmRSS, VmHWM from /proc/<pid>/status) with all peers present;
6. reconcile from an empty kernel: serve stopped, the link deleted, then the reconciler
   pass timed in-process with the real LinuxDataplane (bootstrap.build + reconcile()),
   BESIDE a plain `wg syncconf` of the same exported config into an empty wireguard-go
   interface of the same name, alternating, `--rounds` (3) times each; prints the ratio,
   and times a full `wg syncconf` onto the populated device (what the anchors do per change);
7. the steady-state pass with nothing to do, and serve's cold start until the kernel holds
   every peer again.

It prints figures, never asserts. Peers are created by one client (`--concurrency 1`), as
the earlier runs were; creates are serialized on the host lock, so more clients add little.
`/run/wireguard`
(wireguard-go's UAPI sockets, a host-wide directory) is a private tmpfs inside the
benchmark, so other namespaces' userspace interfaces are neither seen nor touched.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import io
import json
import os
import pstats
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netns_run import interrupt, log, machine, ms, pct, run_in_netns, sh

HERE = Path(__file__).resolve()
UAPI_DIR = Path("/run/wireguard")
PUBLIC_HOST = "192.0.2.1"  # TEST-NET-1: never dialled, only written into client configs
IF_ADDRESS = "10.100.0.1/16"
STATS_MAX_AGE = 2.0  # bootstrap.build's default DumpCache age, which serve uses


# ---------------------------------------------------------------- small helpers


def tool(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found (beside {sys.executable} or on PATH)")
    return found


# ---------------------------------------------------------------- inner: the benchmark


def own_netns_pids() -> list[int]:
    me = os.readlink("/proc/self/ns/net")
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns/net") == me:
                    pids.append(int(entry.name))
    return pids


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def wireguard_go_pids(ifname: str) -> list[int]:
    return [
        pid
        for pid in own_netns_pids()
        if (argv := cmdline(pid)) and "wireguard-go" in argv[0] and ifname in argv[1:]
    ]


def wg_peer_keys(ifname: str) -> set[str]:
    out = sh(["wg", "show", ifname, "dump"], check=False)
    return {line.split("\t")[0] for line in out.splitlines()[1:] if line}


def delete_link(ifname: str) -> None:
    """Delete the link and wait until its wireguard-go process and socket are gone."""
    sh(["ip", "link", "del", ifname], check=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not wireguard_go_pids(ifname) and not (UAPI_DIR / f"{ifname}.sock").exists():
            return
        time.sleep(0.02)
    for pid in wireguard_go_pids(ifname):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (UAPI_DIR / f"{ifname}.sock").unlink()


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    return found


def pss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return kib_to_mib(line.split(":", 1)[1])
    return 0.0


def kib_to_mib(value: str) -> float:
    return int(value.split()[0]) / 1024


class Serve:
    """`wirewarden serve` in this namespace."""

    def __init__(self, env: dict[str, str], logfile: Path, base: str) -> None:
        self.env, self.logfile, self.base = env, logfile, base
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.logfile.open("ab") as out:
            self.proc = subprocess.Popen(
                [tool("wirewarden"), "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the benchmark, which stops serve
            )

    def wait_ready(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"serve exited; log:\n{self.logfile.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"serve not ready after {timeout} s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Timed:
    """A proxy that adds the wall time of every method call to `times[name]`."""

    def __init__(self, target: Any, times: dict[str, float]) -> None:
        self._target, self._times = target, times

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*a: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return attr(*a, **kw)
            finally:
                self._times[name] = self._times.get(name, 0.0) + time.perf_counter() - started

        return call

    def __call__(self, *a: Any, **kw: Any) -> Any:
        return self.__getattr__("__call__")(*a, **kw)


def forget_desired(rec: Any) -> None:
    """Drop DesiredStateReader's cached state, so the next pass reads the database."""
    source = getattr(rec.source, "_target", rec.source)
    if hasattr(source, "_cache"):
        source._cache = None


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.workdir)
        self.data = self.work / "data"
        self.ifname = f"wwb{secrets.token_hex(3)}"
        self.port = args.http_port
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            WIREWARDEN_DATA_DIR=str(self.data),
            WIREWARDEN_HTTP=f"127.0.0.1:{self.port}",
            WIREWARDEN_PUBLIC_HOST=PUBLIC_HOST,
            WIREWARDEN_LOG_LEVEL="warning",
        )
        self.serve = Serve(self.env, self.work / "serve.log", self.base)
        self.results: dict[str, Any] = {}
        self.token = ""

    # -- helpers

    def client(self) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)

    def cli(self, *argv: str) -> str:
        return sh([tool("wirewarden"), *argv], env=self.env)

    # -- phases

    def setup(self) -> None:
        log(f"machine: {machine()}")
        self.results["loadavg_start"] = os.getloadavg()
        log("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        log(f"interface {self.ifname} {IF_ADDRESS}, data dir {self.data}, API {self.base}")
        self.token = self.cli("token", "create", "--name", "bench").strip().splitlines()[-1]
        self.serve.start()
        self.serve.wait_ready()
        with self.client() as c:
            r = c.post("/api/v1/interfaces", json={"name": self.ifname, "address": IF_ADDRESS})
            if r.status_code != 201:
                raise RuntimeError(f"create interface: {r.status_code} {r.text}")
            log(f"  interface status: {r.json()['status']}")

    def create_peers(self) -> int:
        n, workers, budget = self.args.peers, self.args.concurrency, self.args.create_budget
        log(f"\n[1] creating {n} peers through the API ({workers} client threads)")
        counter = iter(range(n))
        lock = threading.Lock()
        done: list[int] = []
        errors: list[str] = []
        started = time.perf_counter()
        stop = threading.Event()

        def worker() -> None:
            with self.client() as c:
                while not stop.is_set():
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    r = c.post(
                        f"/api/v1/interfaces/{self.ifname}/peers", json={"name": f"p{i:05d}"}
                    )
                    with lock:
                        if r.status_code == 201:
                            done.append(i)
                            if len(done) % 1000 == 0:
                                el = time.perf_counter() - started
                                log(
                                    f"    {len(done):>6} peers, {el:6.1f} s, "
                                    f"{len(done) / el:6.0f}/s"
                                )
                        else:
                            errors.append(f"{r.status_code} {r.text[:200]}")
                    if len(errors) > 20 or time.perf_counter() - started > budget:
                        stop.set()

        pool = ThreadPoolExecutor(workers)
        try:
            futures = [pool.submit(worker) for _ in range(workers)]
            while not all(f.done() for f in futures):
                time.sleep(0.1)  # a timed wait, so Ctrl-C reaches this thread at once
            for f in futures:
                f.result()
        finally:
            stop.set()  # on Ctrl-C or a failed worker, the others stop after their request
            pool.shutdown(wait=True)
        elapsed = time.perf_counter() - started
        created = len(done)
        if created < n:
            why = "errors" if len(errors) > 20 else f"the {budget:.0f} s budget ran out"
            log(f"  STOPPED EARLY ({why}): {created} of {n} peers")
        for e in errors[:5]:
            log(f"  error: {e}")
        in_kernel = len(wg_peer_keys(self.ifname))
        self.results["create"] = {
            "requested": n,
            "created": created,
            "errors": len(errors),
            "seconds": elapsed,
            "peers_per_s": created / elapsed,
            "clients": workers,
            "in_kernel": in_kernel,
        }
        log(f"  {created} peers in {elapsed:.1f} s = {created / elapsed:.0f} peers/s")
        log(f"  kernel holds {in_kernel} peers (wg show {self.ifname} dump)")
        return created

    def one_more(self, present: int) -> None:
        """Sequential creates, alternating two clients on keep-alive connections: the
        standard library's http.client (a lean client, as curl) and httpx (a Python client
        that costs ~1.5 ms of its own per call on this machine). Same run, same server."""
        n = self.args.extra
        log(
            f"\n[2] one more peer, API call to kernel applied: {n} sequential POSTs per "
            f"client, alternating, {present} present"
        )
        lat: dict[str, list[float]] = {"http.client": [], "httpx": []}
        keys: list[str] = []
        bad = 0
        path = f"/api/v1/interfaces/{self.ifname}/peers"
        lean = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        with self.client() as c:
            server_before = self.server_side(c)
            for i in range(n):
                for name in lat:
                    body = {"name": f"x{name[-1]}{i:05d}"}
                    t0 = time.perf_counter()
                    if name == "httpx":
                        r = c.post(path, json=body)
                        status, answer = r.status_code, r.content
                    else:
                        lean.request("POST", path, json.dumps(body), headers)
                        got = lean.getresponse()
                        status, answer = got.status, got.read()
                    lat[name].append(time.perf_counter() - t0)
                    peer = json.loads(answer)
                    if status == 201 and peer["status"] == "applied":
                        keys.append(peer["public_key"])
                    else:
                        bad += 1
            server_after = self.server_side(c)
        lean.close()
        served = [b - a for a, b in zip(server_before, server_after, strict=True)]
        in_kernel = wg_peer_keys(self.ifname)
        missing = len([k for k in keys if k not in in_kernel])
        self.results["add_one"] = {
            "n": n,
            "server_mean_ms": served[0] / max(served[1], 1) * 1000,
            "not_applied": bad,
            "missing_in_kernel": missing,
        }
        for name, values in lat.items():
            self.results["add_one"][name] = {
                "p50_ms": pct(values, 50) * 1000,
                "p99_ms": pct(values, 99) * 1000,
                "max_ms": max(values) * 1000,
                "mean_ms": statistics.fmean(values) * 1000,
            }
            log(
                f"  {name:<11} p50 {ms(pct(values, 50))}, p99 {ms(pct(values, 99))}, "
                f"max {ms(max(values))}, mean {ms(statistics.fmean(values))}"
            )
        log(f"  mean inside serve (its request histogram): {ms(served[0] / max(served[1], 1))}")
        log(f"  {2 * n - bad}/{2 * n} answered 'applied'; {missing} missing from wg show dump")

    def server_side(self, c: Any) -> tuple[float, float]:
        """Sum and count of serve's own timing of peer creates (its Prometheus histogram)."""
        text = c.get("/metrics").text
        found = {}
        for part in ("sum", "count"):
            pattern = (
                rf'^wirewarden_http_request_duration_seconds_{part}\{{[^}}]*method="POST"'
                rf'[^}}]*route="/api/v1/interfaces/{{name}}/peers"[^}}]*status="201"'
                rf"[^}}]*\}} (\S+)$"
            )
            m = re.search(pattern, text, re.M)
            found[part] = float(m.group(1)) if m else 0.0
        return found["sum"], found["count"]

    def list_pages(self) -> None:
        n = self.args.list_requests
        with self.client() as c:
            total = c.get(f"/api/v1/interfaces/{self.ifname}/peers?limit=1").json()["total"]
            log(f"\n[3] list page of 100 peers with live stats: {n} random pages of {total}")
            rng = random.Random(7)
            lat: list[float] = []
            short = 0
            for _ in range(n):
                offset = rng.randrange(0, max(1, total - 100))
                t0 = time.perf_counter()
                r = c.get(f"/api/v1/interfaces/{self.ifname}/peers?limit=100&offset={offset}")
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200 or len(r.json()["items"]) != 100:
                    short += 1
            cold: list[float] = []
            for _ in range(self.args.cold_pages):
                time.sleep(STATS_MAX_AGE + 0.2)  # the stats cache is stale: the page dumps wg
                offset = rng.randrange(0, max(1, total - 100))
                t0 = time.perf_counter()
                c.get(f"/api/v1/interfaces/{self.ifname}/peers?limit=100&offset={offset}")
                cold.append(time.perf_counter() - t0)
        self.results["list_page"] = {
            "n": n,
            "p50_ms": pct(lat, 50) * 1000,
            "p95_ms": pct(lat, 95) * 1000,
            "max_ms": max(lat) * 1000,
            "bad_pages": short,
            "cold_n": len(cold),
            "cold_median_ms": statistics.median(cold) * 1000 if cold else None,
            "cold_max_ms": max(cold) * 1000 if cold else None,
        }
        log(f"  p50 {ms(pct(lat, 50))}, p95 {ms(pct(lat, 95))}, max {ms(max(lat))}, bad {short}")
        if cold:
            log(
                f"  stats cache cold ({len(cold)} pages, {STATS_MAX_AGE:.0f} s apart): "
                f"median {ms(statistics.median(cold))}, max {ms(max(cold))}"
            )

    def rss(self) -> None:
        assert self.serve.proc is not None
        status = proc_status(self.serve.proc.pid)
        rss, hwm = kib_to_mib(status["VmRSS"]), kib_to_mib(status["VmHWM"])
        wg = wireguard_go_pids(self.ifname)
        wg_rss = kib_to_mib(proc_status(wg[0])["VmRSS"]) if wg else float("nan")
        # serve's own Python helpers (the DNS query-log writer and multiprocessing's
        # resource tracker) count as serve, wireguard-go and tools it runs do not. PSS, so
        # pages they share are not counted twice.
        helpers = [
            pid
            for pid in descendants(self.serve.proc.pid)
            if Path(cmdline(pid)[0] if cmdline(pid) else "").name.startswith("python")
        ]
        family = [self.serve.proc.pid, *helpers]
        pss = sum(pss_mib(pid) for pid in family)
        self.results["rss"] = {
            "serve_rss_mib": rss,
            "serve_hwm_mib": hwm,
            "serve_with_children_pss_mib": pss,
            "serve_children": [" ".join(cmdline(pid))[:80] for pid in family[1:]],
            "wireguard_go_mib": wg_rss,
        }
        log(
            f"\n[4] serve RSS {rss:.0f} MiB (peak {hwm:.0f} MiB); with its {len(helpers)} "
            f"Python helper processes {pss:.0f} MiB PSS; wireguard-go {wg_rss:.0f} MiB"
        )

    def reconcile_vs_syncconf(self, total: int) -> None:
        log(f"\n[5] reconcile {total} peers into an empty kernel vs plain `wg syncconf`")
        self.serve.stop()
        exported = self.cli("interface", "export", self.ifname)
        stripped = "\n".join(
            line
            for line in exported.splitlines()
            if not re.match(r"\s*(Address|MTU|DNS|Table|Pre|Post|SaveConfig)\w*\s*=", line, re.I)
        )
        conf = self.work / f"{self.ifname}.conf"
        conf.write_text(stripped + "\n")
        conf.chmod(0o600)
        sections = stripped.count("[Peer]")
        log(f"  exported config: {sections} [Peer] sections")

        from wirewarden.bootstrap import build
        from wirewarden.config import Settings

        settings = Settings(
            data_dir=self.data, public_host=PUBLIC_HOST, wg_implementation="wireguard-go"
        )
        container = build(settings)
        times: dict[str, float] = {}
        rec = container.reconciler
        rec.dataplane = Timed(rec.dataplane, times)
        # A pass reads the database through a pinned snapshot: time the read itself.
        reader = rec.source
        reader._read = Timed(reader, times)._read  # type: ignore[method-assign]
        rec.source = Timed(rec.source, times)
        sync_s: list[float] = []
        resync_s: list[float] = []
        rec_s: list[float] = []
        steps: list[dict[str, float]] = []
        profile = cProfile.Profile() if self.args.profile else None
        try:
            for rnd in range(self.args.rounds):
                delete_link(self.ifname)
                # the anchor: an empty wireguard-go device of the same name, `wg syncconf`
                wgo = subprocess.Popen(
                    ["wireguard-go", "-f", self.ifname],
                    env=dict(os.environ, LOG_LEVEL="error"),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                while not (UAPI_DIR / f"{self.ifname}.sock").exists():
                    if wgo.poll() is not None:
                        raise RuntimeError("wireguard-go exited")
                    time.sleep(0.01)
                t0 = time.perf_counter()
                sh(["wg", "syncconf", self.ifname, str(conf)])
                sync_s.append(time.perf_counter() - t0)
                got_sync = len(wg_peer_keys(self.ifname))
                # what the anchors do per change: a full syncconf onto the populated device
                t0 = time.perf_counter()
                sh(["wg", "syncconf", self.ifname, str(conf)])
                resync_s.append(time.perf_counter() - t0)
                delete_link(self.ifname)
                wgo.wait(timeout=10)
                # the product: one reconciler pass from an empty kernel, reading the
                # database as a fresh start would (no desired state cached from a last round)
                forget_desired(rec)
                times.clear()
                if profile is not None and rnd == 0:
                    profile.enable()
                t0 = time.perf_counter()
                report = rec.reconcile()
                rec_s.append(time.perf_counter() - t0)
                if profile is not None and rnd == 0:
                    profile.disable()
                steps.append(dict(times))
                got_rec = len(wg_peer_keys(self.ifname))
                log(
                    f"  round {rnd + 1}: syncconf {sync_s[-1]:.2f} s ({got_sync} peers), "
                    f"reconcile {rec_s[-1]:.2f} s ({got_rec} peers, ok={report.ok})"
                )
                if not report.ok:
                    log(f"    errors: {report.errors}")
            # the steady state: a pass with nothing to do, desired state cached and re-read
            times.clear()
            t0 = time.perf_counter()
            rec.reconcile()
            noop_cached = time.perf_counter() - t0
            noop_steps = dict(times)
            noop_profile = cProfile.Profile() if self.args.profile else None
            if noop_profile is not None:
                noop_profile.enable()
                rec.reconcile()
                noop_profile.disable()
            forget_desired(rec)
            t0 = time.perf_counter()
            rec.reconcile()
            noop_reread = time.perf_counter() - t0
        finally:
            container.engine.dispose()
        med_sync, med_rec = statistics.median(sync_s), statistics.median(rec_s)
        last = steps[-1]
        set_peers = statistics.median(s.get("set_peers", 0.0) for s in steps)
        self.results["reconcile"] = {
            "peers": total,
            "rounds": len(rec_s),
            "reconcile_s": rec_s,
            "syncconf_s": sync_s,
            "reconcile_median_s": med_rec,
            "syncconf_median_s": med_sync,
            "syncconf_populated_median_s": statistics.median(resync_s),
            "ratio": med_rec / med_sync,
            "set_peers_median_s": set_peers,
            "set_peers_ratio": set_peers / med_sync,
            "steps_last_round_s": last,
            "noop_pass_cached_s": noop_cached,
            "noop_pass_reread_s": noop_reread,
            "noop_steps_s": noop_steps,
        }
        log(
            f"  full `wg syncconf` onto the populated device (the anchors' per-change cost): "
            f"median {ms(statistics.median(resync_s))}"
        )
        log(
            f"  median: reconcile {med_rec:.2f} s, syncconf {med_sync:.2f} s, "
            f"ratio {med_rec / med_sync:.2f}x"
        )
        log(
            f"  of which wg addconf (set_peers) {set_peers:.2f} s = "
            f"{set_peers / med_sync:.2f}x syncconf"
        )
        log("  steps of the last pass: " + _steps(last))
        log(
            f"  pass with nothing to do: {ms(noop_cached)} (desired cached), "
            f"{ms(noop_reread)} (re-read)"
        )
        log("  steps of the pass with nothing to do (cached): " + _steps(noop_steps))
        for what, prof in (("the first reconcile pass", profile), ("a no-op pass", noop_profile)):
            if prof is not None:
                buf = io.StringIO()
                pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(25)
                log(f"  cProfile of {what} (top 25 cumulative):")
                log(buf.getvalue())

    def serve_cold_start(self, total: int) -> None:
        log(f"\n[6] serve cold start with {total} peers until the kernel holds them all")
        delete_link(self.ifname)
        t0 = time.perf_counter()
        self.serve.start()
        seen = 0
        deadline = t0 + 120
        while time.perf_counter() < deadline:
            seen = len(wg_peer_keys(self.ifname))
            if seen >= total:
                break
            time.sleep(0.1)
        took = time.perf_counter() - t0
        self.serve.wait_ready()
        ready = time.perf_counter() - t0
        self.results["serve_cold_start"] = {
            "peers_seen": seen,
            "all_in_kernel_s": took,
            "api_ready_s": ready,
        }
        log(
            f"  all {seen} peers in the kernel {took:.2f} s after start "
            f"(API answered at {ready:.2f} s)"
        )

    def profile_create(self, n: int = 50) -> None:
        """cProfile of PeerService.create in-process with the real data plane (serve stopped)."""
        from wirewarden.bootstrap import build
        from wirewarden.config import Settings
        from wirewarden.services.context import Actor
        from wirewarden.services.schemas import PeerCreate

        self.serve.stop()
        container = build(Settings(data_dir=self.data, wg_implementation="wireguard-go"))
        try:
            container.reconciler.reconcile()
            actor = Actor("bench", "profile")
            self.create_phases(container, actor)
            profile = cProfile.Profile()
            profile.enable()
            for i in range(n):
                container.peers.create(self.ifname, PeerCreate(name=f"prof{i:04d}"), actor)
            profile.disable()
        finally:
            container.engine.dispose()
        buf = io.StringIO()
        pstats.Stats(profile, stream=buf).sort_stats("cumulative").print_stats(25)
        log(f"\n[profile] PeerService.create x{n} in-process (top 25 cumulative):")
        log(buf.getvalue())

    def create_phases(self, container: Any, actor: Any, n: int = 200) -> None:
        """Plain wall times of PeerService.create in-process and of its parts (no profiler)."""
        from wirewarden.services.schemas import PeerCreate

        deps = container.peers.deps
        times: dict[str, float] = {}
        real = deps.applier, deps.vault, container.peers.interfaces
        deps.applier, deps.vault = Timed(real[0], times), Timed(real[1], times)
        container.peers.interfaces = Timed(real[2], times)
        lat: list[float] = []
        from sqlalchemy import event

        started: dict[int, float] = {}

        def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            started[id(cursor)] = time.perf_counter()

        def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            key = "sql " + " ".join(statement.split()[:3])[:40]
            took = time.perf_counter() - started.pop(id(cursor), time.perf_counter())
            times[key] = times.get(key, 0.0) + took

        event.listen(container.engine, "before_cursor_execute", before)
        event.listen(container.engine, "after_cursor_execute", after)
        try:
            for i in range(n):
                t0 = time.perf_counter()
                container.peers.create(self.ifname, PeerCreate(name=f"ph{i:04d}"), actor)
                lat.append(time.perf_counter() - t0)
        finally:
            deps.applier, deps.vault, container.peers.interfaces = real
        log(
            f"\n[phases] PeerService.create x{n} in-process: p50 {ms(pct(lat, 50))}, "
            f"p99 {ms(pct(lat, 99))}, mean {ms(statistics.fmean(lat))}"
        )
        for name, total in sorted(times.items(), key=lambda kv: -kv[1]):
            log(f"  {name:<24} {total / n * 1000:6.2f} ms per create")

    def run(self) -> None:
        started = time.perf_counter()
        try:
            self.setup()
            created = self.create_peers()
            self.one_more(created)
            self.list_pages()
            self.rss()
            total = len(wg_peer_keys(self.ifname))
            self.reconcile_vs_syncconf(total)
            if not self.args.skip_cold_start:
                self.serve_cold_start(total)
            if self.args.profile:
                self.profile_create()
        finally:
            self.serve.stop()
            delete_link(self.ifname)
        self.results["wall_s"] = time.perf_counter() - started
        self.results["loadavg_end"] = os.getloadavg()
        self.results["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.results["machine"] = machine()
        self.summary()

    def summary(self) -> None:
        r = self.results
        rows: list[tuple[str, str, str]] = []
        c = r["create"]
        rows.append(
            (
                f"create {c['created']} peers via API",
                "-",
                f"{c['peers_per_s']:.0f} peers/s ({c['seconds']:.0f} s)",
            )
        )
        lean, heavy = r["add_one"]["http.client"], r["add_one"]["httpx"]
        for q, target in (("p50", "< 10 ms"), ("p99", "< 50 ms")):
            rows.append(
                (
                    f"add one peer {q}",
                    target,
                    f"{lean[q + '_ms']:.1f} ms (http.client), {heavy[q + '_ms']:.1f} ms (httpx)",
                )
            )
        resync = r["reconcile"]["syncconf_populated_median_s"] * 1000
        rows.append(
            (
                "anchor: syncconf per change",
                "-",
                f"{resync:.0f} ms = {resync / lean['p50_ms']:.1f}x the add-one p50",
            )
        )
        lp = r["list_page"]
        rows.append(("list page of 100 p95", "< 50 ms", f"{lp['p95_ms']:.1f} ms"))
        mib = r["rss"]["serve_rss_mib"]
        rows.append(("serve RSS", "< 250 MB", f"{mib:.0f} MiB = {mib * 1.048576:.0f} MB"))
        whole = r["rss"]["serve_with_children_pss_mib"]
        rows.append(("serve + its helper processes, PSS", "-", f"{whole * 1.048576:.0f} MB"))
        rc = r["reconcile"]
        rows.append(
            (
                f"reconcile {rc['peers']} from empty",
                "< 2 s",
                f"{rc['reconcile_median_s']:.2f} s vs syncconf {rc['syncconf_median_s']:.2f} s "
                f"= {rc['ratio']:.2f}x",
            )
        )
        rows.append(
            ("list page, stats cache cold", "-", f"median {lp['cold_median_ms'] or 0:.0f} ms")
        )
        rows.append(("pass with nothing to do", "-", f"{rc['noop_pass_reread_s'] * 1000:.0f} ms"))
        load = " ".join(f"{x:.2f}" for x in r["loadavg_end"])
        log(f"\nsummary ({r['wall_s']:.0f} s wall, {r['date']}, load average at end {load}):")
        for what, target, got in rows:
            log(f"  {what:<32} {target:>9}   {got}")
        if self.args.json:
            Path(self.args.json).write_text(json.dumps(r, indent=2) + "\n")
            log(f"results written to {self.args.json}")


def _steps(times: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f} s" for k, v in times.items())


def inner(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    Bench(args).run()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peers", type=int, default=10_000, help="peers created through the API")
    p.add_argument("--extra", type=int, default=200, help="'one more peer' samples")
    p.add_argument("--list-requests", type=int, default=200)
    p.add_argument("--cold-pages", type=int, default=5, help="pages with a cold stats cache")
    p.add_argument("--rounds", type=int, default=3, help="reconcile/syncconf rounds")
    p.add_argument("--concurrency", type=int, default=1, help="client threads creating peers")
    p.add_argument("--create-budget", type=float, default=240, help="seconds for creating peers")
    p.add_argument("--http-port", type=int, default=18080)
    p.add_argument("--skip-cold-start", action="store_true")
    p.add_argument(
        "--profile", action="store_true", help="time the parts of a create in-process; cProfile"
    )
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temp data dir")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main() -> int:
    args = parse_args()
    try:
        if args.inner:
            return inner(args)
        return run_in_netns(HERE, "wwbench", ("wg", "wireguard-go", "nft"), keep=args.keep)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Traffic-metrics figures at 10,000 peers (DESIGN.md §7: "metrics for 10k peers every 10 s:
< 5 % of one core; 30-day peer chart query < 50 ms").

Run as root from the repository root:

    .venv/bin/python bench/metrics_10k.py                 # the full run, about 4 minutes
    .venv/bin/python bench/metrics_10k.py --peers 1000 --periods 30 --day-peers 100 \\
        --history-days 3                                  # a quick look
    .venv/bin/python bench/with_postgres.py -- .venv/bin/python bench/metrics_10k.py \\
        --url {url}                     # steps 2-4 on SQLite, then again on PostgreSQL

What it does, inside a network namespace it creates and removes itself (with a private
tmpfs on /run/wireguard, so no other namespace's wireguard-go is listed or touched; no
traffic at all):

1. a real wireguard-go interface holding N (10,000) peers; `wg show all dump` timed
   `--dumps` (10) times: wall time, CPU of `wg` and CPU of wireguard-go answering it;
2. a fresh SQLite database holding those N peers; the real Collector fed recorded dumps
   (the real dump's text with its counters advanced each period, parsed by the product's
   parser inside the timed pass) over `--periods` (360 = one simulated hour at 10 s):
   every peer moving bytes every period (the worst case), then 10 % of them: CPU per pass
   (parse + deltas + batched write + rollup), as a share of one core at a 10 s period,
   with the dump's own cost from step 1 added;
3. database growth: bytes per row of each tier (SQLite's dbstat) after step 2, and a whole
   simulated day (one look a minute) of `--day-peers` (1,000) all-active peers, measured
   as file growth after rollups: bytes per active peer per day (target < 50 kB);
4. 30 days of hourly history for all N peers written straight into the hourly tier
   (plus the last day in 5-minute rows), then the 30-day chart of one peer through
   TrafficService (the API's code path, JSON included) for 100 random peers: p50/p95;
   the interface's 30-day chart and the 30-day top-10 peers, for scale;
5. a /metrics scrape with the N peers' snapshot: time and size.

With `--url` (a PostgreSQL database, e.g. the one bench/with_postgres.py starts), steps 2
to 4 run again on it in the same run, each step on a fresh schema; sizes there are
PostgreSQL's own (pg_total_relation_size, pg_database_size: tables and indexes).

It prints figures and never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from netns_run import interrupt, log, machine, ms, pct, run_in_netns, sh

HERE = Path(__file__).resolve()
IFNAME = "wwm0"
DAY, HOUR = 86400, 3600


def peer_ip(i: int) -> str:
    return f"10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}"


def used_bytes(engine: Any, path: Path | None) -> int:
    """Bytes of the database's pages in use, WAL folded in (a fresh connection after the
    engine's are closed, so the checkpoint is complete); PostgreSQL: the database's size
    after a VACUUM (dead rows of the rollups' deletes not counted)."""
    if path is None:
        from sqlalchemy import text as sql

        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sql("VACUUM"))
            return int(conn.scalar(sql("SELECT pg_database_size(current_database())")))
    engine.dispose()
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        free = con.execute("PRAGMA freelist_count").fetchone()[0]
        size = con.execute("PRAGMA page_size").fetchone()[0]
    finally:
        con.close()
    return int((pages - free) * size)


# ---------------------------------------------------------------- inner: the benchmark


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(args.workdir)
        self.results: list[tuple[str, str, str]] = []
        self.wg_go: subprocess.Popen[bytes] | None = None
        # Where steps 2-4 run now: "sqlite", then "postgresql" with --url.
        self.backend = "sqlite"

    def figure(self, what: str, target: str, got: str) -> None:
        if self.args.url and not what.startswith("`wg") and not what.startswith("/metrics"):
            what = f"[{self.backend}] {what}"
        self.results.append((what, target, got))
        log(f"  -> {what}: {got}")

    # ---- 1. a real interface

    def real_interface(self) -> tuple[str, list[str]]:
        from wirewarden.domain.keys import generate_keypair

        n = self.args.peers
        log(f"[1] wireguard-go interface {IFNAME} with {n} peers")
        self.wg_go = subprocess.Popen(
            ["wireguard-go", "-f", IFNAME],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, LOG_LEVEL="error"),
        )
        deadline = time.monotonic() + 5
        while not Path(f"/run/wireguard/{IFNAME}.sock").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("wireguard-go made no UAPI socket")
            time.sleep(0.02)
        server = generate_keypair()
        sh(
            ["wg", "set", IFNAME, "private-key", "/dev/stdin", "listen-port", "51999"],
            input=server.private_key + "\n",
        )
        keys = [generate_keypair().public_key for _ in range(n)]
        conf = "".join(
            f"[Peer]\nPublicKey = {k}\nAllowedIPs = {peer_ip(i)}/32\n" for i, k in enumerate(keys)
        )
        sh(["wg", "addconf", IFNAME, "/dev/stdin"], input=conf, timeout=300)
        walls, wg_cpu, go_cpu = [], [], []
        text = ""
        for _ in range(self.args.dumps):
            c0, g0, w0 = children_cpu(), proc_cpu(self.wg_go.pid), time.perf_counter()
            text = sh(["wg", "show", "all", "dump"], timeout=60)
            walls.append(time.perf_counter() - w0)
            wg_cpu.append(children_cpu() - c0)
            go_cpu.append(proc_cpu(self.wg_go.pid) - g0)
        lines = text.count("\n")
        assert lines == n + 1, f"dump has {lines} lines for {n} peers"
        self.dump_cpu = statistics.median(wg_cpu) + statistics.median(go_cpu)
        self.figure(
            f"`wg show all dump` of {n} peers (median of {self.args.dumps})",
            "-",
            f"wall {ms(statistics.median(walls))}, CPU: wg {ms(statistics.median(wg_cpu))} + "
            f"wireguard-go {ms(statistics.median(go_cpu))}, {len(text) / 1e6:.2f} MB of text",
        )
        return text, keys

    # ---- 2. the collector

    def database(self, name: str, keys: list[str]) -> tuple[Any, Path | None]:
        """A fresh database holding one interface and these peers: a SQLite file named
        `name`, or on PostgreSQL the --url database with its schema made anew."""
        from sqlalchemy import text as sql

        from wirewarden.store import schema
        from wirewarden.store.db import make_engine

        path: Path | None = None
        if self.backend == "sqlite":
            path = self.workdir / name
            engine = make_engine(f"sqlite:///{path}")
        else:
            engine = make_engine(self.args.url)
            with engine.begin() as conn:
                conn.execute(sql("DROP SCHEMA public CASCADE"))
                conn.execute(sql("CREATE SCHEMA public"))
        schema.upgrade(engine)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                sql(
                    "INSERT INTO nodes (id, name, revision, created_at) VALUES (1, 'local', 1, :n)"
                ),
                {"n": now},
            )
            conn.execute(
                sql("INSERT INTO tenants (id, name, created_at) VALUES (1, 'default', :n)"),
                {"n": now},
            )
            conn.execute(
                sql(
                    "INSERT INTO interfaces (id, tenant_id, node_id, name, ipv4, listen_port,"
                    " private_key_enc, public_key, dns, mtu, enabled, sync_state, created_at,"
                    " updated_at) VALUES (1, 1, 1, :name, '10.100.0.1/16', 51999, :key, 'k',"
                    " '', 1420, :yes, 'applied', :n, :n)"
                ),
                {"name": IFNAME, "n": now, "key": b"\0", "yes": True},
            )
            conn.execute(
                sql(
                    "INSERT INTO peers (id, interface_id, name, host_index, ipv4, public_key,"
                    " allowed_ips, routed_ips, enabled, sync_state, created_at, updated_at)"
                    " VALUES (:id, 1, :name, :index, :ip, :key, '0.0.0.0/0', '', :yes,"
                    " 'applied', :n, :n)"
                ),
                [
                    {"id": i + 1, "name": f"peer{i}", "index": i + 2, "ip": peer_ip(i)}
                    | {"key": k, "n": now, "yes": True}
                    for i, k in enumerate(keys)
                ],
            )
        return engine, path

    @staticmethod
    def dumps(text: str, active: float, seed: int = 1, step: int = 10) -> Any:
        """An endless series of dump texts: the real one with counters advanced, a share
        `active` of the peers moving 50-500 kB each period."""
        head, *rows = text.rstrip("\n").split("\n")
        fields = [r.split("\t") for r in rows]
        rng = random.Random(seed)
        rx = [0] * len(rows)
        tx = [0] * len(rows)
        movers = [i for i in range(len(rows)) if rng.random() < active]
        moving = set(movers)
        t = 1_800_000_000
        while True:
            t += step
            for i in movers:
                rx[i] += rng.randrange(5_000, 50_000)
                tx[i] += rng.randrange(50_000, 500_000)
            out = [head]
            for i, f in enumerate(fields):
                hs = str(t - 30) if i in moving else "0"
                out.append("\t".join((*f[:5], hs, str(rx[i]), str(tx[i]), f[8])))
            yield "\n".join(out) + "\n", float(t)

    def collector_run(
        self, text: str, keys: list[str], active: float, periods: int
    ) -> dict[str, float]:
        from wirewarden.domain.wgdump import parse_all_dump
        from wirewarden.metrics.collector import Collector
        from wirewarden.store.tsdb import TrafficStore

        engine, path = self.database(f"collector-{active}.db", keys)
        store = TrafficStore(engine)
        feed = self.dumps(text, active)
        current: dict[str, Any] = {}

        def source() -> tuple[dict[str, Any], float]:
            return parse_all_dump(current["text"]), current["t"]

        collector = Collector(source, store, "local", 10.0)
        cpu: list[float] = []
        wall: list[float] = []
        for _ in range(periods + 1):
            current["text"], current["t"] = next(feed)
            c0, w0 = time.process_time(), time.perf_counter()
            collector.collect()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        first, cpu, wall = cpu[0], cpu[1:], wall[1:]
        self.collector = collector
        self.engine, self.db_path = engine, path
        return {
            "first": first,
            "p50": statistics.median(cpu),
            "p95": pct(cpu, 95),
            "mean": statistics.fmean(cpu),
            "wall_p50": statistics.median(wall),
        }

    def collector_figures(self, text: str, keys: list[str]) -> None:
        n, periods = self.args.peers, self.args.periods
        for active in (1.0, 0.1):
            count = periods if active == 1.0 else max(periods // 6, 10)
            log(f"[2] collector over {count} periods, {active:.0%} of {n} peers active")
            r = self.collector_run(text, keys, active, count)
            total = r["mean"] + self.dump_cpu
            self.figure(
                f"collector CPU per 10 s pass, {n} peers, {active:.0%} active",
                "< 5 % of a core",
                f"pass p50 {ms(r['p50'])} / p95 {ms(r['p95'])} / mean {ms(r['mean'])} "
                f"(first pass {ms(r['first'])}; wall p50 {ms(r['wall_p50'])}); with the dump "
                f"({ms(self.dump_cpu)}): {ms(total)} per 10 s = "
                f"**{total / 10 * 100:.2f} % of one core**",
            )
            if active == 1.0:
                self.tier_sizes(n, count)

    def tier_sizes(self, n: int, periods: int) -> None:
        if self.db_path is None:
            self.pg_tier_sizes(n, periods)
            return
        con = sqlite3.connect(self.db_path)
        try:
            rows = dict(
                con.execute(
                    "SELECT name, SUM(pgsize) FROM dbstat WHERE name LIKE 'peer_traffic_%'"
                    " OR name = 'pk_peer_traffic_raw' GROUP BY name"
                ).fetchall()
            )
            counts = {
                t: con.execute(f"SELECT COUNT(*) FROM peer_traffic_{t}").fetchone()[0]  # noqa: S608
                for t in ("raw", "5m", "1h")
            }
            counters = con.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name = 'peer_counters'"
            ).fetchone()[0]
        except sqlite3.OperationalError as exc:
            log(f"  (no dbstat in this SQLite: {exc})")
            return
        finally:
            con.close()
        self.tier_figures(n, periods, rows, counts, counters, "dbstat")

    def pg_tier_sizes(self, n: int, periods: int) -> None:
        from sqlalchemy import text as sql

        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sql("VACUUM ANALYZE"))
            rows, counts = {}, {}
            for t in ("raw", "5m", "1h"):
                table = f"peer_traffic_{t}"
                rows[table] = conn.scalar(sql(f"SELECT pg_total_relation_size('{table}')"))
                counts[t] = conn.scalar(sql(f"SELECT COUNT(*) FROM {table}"))  # noqa: S608
            counters = conn.scalar(sql("SELECT pg_total_relation_size('peer_counters')"))
        self.tier_figures(n, periods, rows, counts, counters, "pg_total_relation_size")

    def tier_figures(
        self,
        n: int,
        periods: int,
        rows: dict[str, int],
        counts: dict[str, int],
        counters: int,
        how: str,
    ) -> None:
        per_row = {t: rows.get(f"peer_traffic_{t}", 0) / counts[t] for t in counts if counts[t]}
        day = 1440 * per_row.get("raw", 0) + 288 * per_row.get("5m", 0) + 24 * per_row.get("1h", 0)
        self.figure(
            f"bytes per row on disk after {periods} periods of {n} active peers ({how})",
            "-",
            ", ".join(f"{t} {b:.1f} B ({counts[t]} rows)" for t, b in per_row.items())
            + f"; peer_counters {counters / n:.0f} B per peer (fixed)",
        )
        self.figure(
            "estimated bytes written per active peer per day (1440 raw + 288 5m + 24 1h rows)",
            "< 50 kB",
            f"**{day / 1000:.1f} kB**",
        )

    # ---- 3. a whole day

    def day_growth(self, text: str) -> None:
        from wirewarden.domain.wgdump import parse_all_dump
        from wirewarden.metrics.collector import Collector
        from wirewarden.store.tsdb import TrafficStore

        n = self.args.day_peers
        head, *rows = text.rstrip("\n").split("\n")
        small = head + "\n" + "\n".join(rows[:n]) + "\n"
        log(f"[3] one simulated day (a look a minute) of {n} active peers")
        # The dump lists peers in its own order: the database gets the keys of these rows.
        engine, path = self.database("day.db", [r.split("\t")[1] for r in rows[:n]])
        store = TrafficStore(engine)
        feed = self.dumps(small, 1.0, seed=2, step=60)
        state: dict[str, Any] = {}
        collector = Collector(
            lambda: (parse_all_dump(state["text"]), state["t"]), store, "local", 60.0
        )
        state["text"], state["t"] = next(feed)
        collector.collect()
        start = used_bytes(engine, path)
        t0 = state["t"]
        started = time.perf_counter()
        while state["t"] < t0 + DAY:
            state["text"], state["t"] = next(feed)
            collector.collect()
        store.retain(int(state["t"]))
        grown = used_bytes(engine, path) - start
        took = time.perf_counter() - started
        self.figure(
            f"database growth, one day of {n} all-active peers (pages in use, after rollups)",
            "< 50 kB per active peer",
            f"{grown / 1e6:.2f} MB = **{grown / n / 1000:.1f} kB per active peer per day** "
            f"(simulated in {took:.0f} s)",
        )

    # ---- 4. 30-day charts

    def charts(self, keys: list[str]) -> None:
        from sqlalchemy import text as sql

        from wirewarden.services.traffic import TrafficService
        from wirewarden.store.db import bulk_insert, make_sessions
        from wirewarden.store.tsdb import TrafficStore

        n, days = self.args.peers, self.args.history_days
        engine, path = self.database("history.db", keys)
        now = int(time.time())
        hour0 = now - now % HOUR
        first = hour0 - days * 24 * HOUR
        day0, today = first - first % DAY + DAY, hour0 - hour0 % DAY
        log(
            f"[4] {days} days of history for {n} peers, as the rollups leave it: hourly rows "
            f"({n * days * 24:,}), daily rows for the whole days, 5-minute rows for the last day"
        )

        def series(table: str, key: str) -> Any:
            binds = [("id", key, "BIGINT"), ("t", "t", "BIGINT")]
            binds += [("rx", "rx", "BIGINT"), ("tx", "tx", "BIGINT")]
            return bulk_insert(table, binds)

        started = time.perf_counter()
        rng = random.Random(3)
        hours = range(first, hour0, HOUR)
        with engine.begin() as conn:
            # In key order, a few hundred peers at a time: appends, not scattered inserts.
            for lo in range(1, n + 1, 500):
                chunk = range(lo, min(lo + 500, n + 1))
                hourly = [
                    (p, t, rng.randrange(10**6), rng.randrange(10**8)) for p in chunk for t in hours
                ]
                daily: dict[tuple[int, int], list[int]] = {}
                for p, t, rx, tx in hourly:
                    if day0 <= t < today:
                        sums = daily.setdefault((p, t - t % DAY), [0, 0])
                        sums[0] += rx
                        sums[1] += tx
                fives = [(p, t, 1000, 10_000) for p in chunk for t in range(today, hour0, 300)]
                for table, rows in (
                    ("peer_traffic_1h", hourly),
                    ("peer_traffic_1d", [(p, d, rx, tx) for (p, d), (rx, tx) in daily.items()]),
                    ("peer_traffic_5m", fives),
                ):
                    series(table, "peer_id").execute(
                        conn, [{"id": p, "t": t, "rx": rx, "tx": tx} for p, t, rx, tx in rows]
                    )
            series("interface_traffic_1h", "interface_id").execute(
                conn, [{"id": 1, "t": t, "rx": 5 * 10**8, "tx": 5 * 10**10} for t in hours]
            )
            marks = [
                ("peer:5m", hour0),
                ("peer:1h", hour0),
                ("peer:1d", today),
                ("interface:5m", hour0),
                ("interface:1h", hour0),
                ("interface:1d", 0),
            ]
            conn.execute(
                sql("INSERT INTO traffic_rollups (name, until) VALUES (:name, :until)"),
                [{"name": name, "until": until} for name, until in marks],
            )
        size = path.stat().st_size if path is not None else used_bytes(engine, None)
        log(f"  written in {time.perf_counter() - started:.0f} s, {size / 1e6:.0f} MB")
        service = TrafficService(make_sessions(engine), TrafficStore(engine), "local")
        since = datetime.now(UTC) - timedelta(days=30)
        sample = random.Random(4).sample(range(1, n + 1), min(100, n))
        for label, fetch in (
            (
                "dashboard chart JSON",
                lambda pid: json.dumps(service.peer_buckets(pid, since).__dict__),
            ),
            ("REST /traffic JSON", lambda pid: service.peer_series(pid, since).model_dump_json()),
        ):
            times = []
            for pid in sample:
                w0 = time.perf_counter()
                fetch(pid)
                times.append(time.perf_counter() - w0)
            self.figure(
                f"30-day chart of one peer, {label} (721 points, step 1 h), {n} peers' history",
                "< 50 ms",
                f"p50 **{ms(statistics.median(times))}**, p95 {ms(pct(times, 95))}, "
                f"max {ms(max(times))} ({len(sample)} peers)",
            )
        w0 = time.perf_counter()
        service.interface_series(IFNAME, since).model_dump_json()
        iface = time.perf_counter() - w0
        w0 = time.perf_counter()
        top = service.top(since, None, 10)
        top_t = time.perf_counter() - w0
        self.figure("30-day chart of the interface", "-", ms(iface))
        self.figure(f"30-day top 10 of {n} peers", "-", f"{ms(top_t)} ({len(top.items)} rows)")
        w0 = time.perf_counter()
        service.top(datetime.now(UTC) - timedelta(days=1), None, 10)
        self.figure(
            f"24-hour top 10 of {n} peers (the overview's)", "-", ms(time.perf_counter() - w0)
        )

    # ---- 5. /metrics

    def scrape(self) -> None:
        from wirewarden.metrics.prometheus import Telemetry

        telemetry = Telemetry()
        telemetry.watch(self.collector)
        times, size = [], 0
        for _ in range(10):
            w0 = time.perf_counter()
            size = len(telemetry.exposition())
            times.append(time.perf_counter() - w0)
        peers = len(self.collector.snapshot.peers)
        self.figure(
            f"/metrics exposition with {peers} peers",
            "-",
            f"p50 **{ms(statistics.median(times))}**, max {ms(max(times))}, {size / 1e6:.2f} MB",
        )

    def run(self) -> None:
        log(f"machine: {machine()}")
        log(f"load average at start: {os.getloadavg()}")
        started = time.perf_counter()
        try:
            text, keys = self.real_interface()
            for backend in ("sqlite", "postgresql") if self.args.url else ("sqlite",):
                self.backend = backend
                log(f"\n== {backend}")
                self.collector_figures(text, keys)
                if backend == "sqlite":
                    self.scrape()
                self.day_growth(text)
                self.charts(keys)
        finally:
            if self.wg_go is not None:
                self.wg_go.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.wg_go.wait(timeout=5)
        log(f"load average at end: {os.getloadavg()}; wall {time.perf_counter() - started:.0f} s")
        log("\nsummary")
        for what, target, got in self.results:
            log(f"| {what} | {target} | {got} |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peers", type=int, default=10_000)
    p.add_argument("--dumps", type=int, default=10, help="timed `wg show all dump` runs")
    p.add_argument("--periods", type=int, default=360, help="collector passes (10 s each)")
    p.add_argument("--day-peers", type=int, default=1000, help="peers in the simulated day")
    p.add_argument("--history-days", type=int, default=30)
    p.add_argument("--url", help="a PostgreSQL database to run steps 2-4 on as well")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main() -> int:
    args = parse_args()
    try:
        if not args.inner:
            return run_in_netns(HERE, "wwmbench", ("wg", "wireguard-go"))
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        Bench(args).run()
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

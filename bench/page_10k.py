"""A page of 100 peers at 10,000, by OFFSET and by cursor, at several depths (DESIGN.md §7:
p95 < 25 ms at any offset), on SQLite and on PostgreSQL in the same run.

    .venv/bin/python bench/page_10k.py                  # SQLite, then PostgreSQL (as root)
    .venv/bin/python bench/page_10k.py --no-postgres    # SQLite only (no root needed)

For each database: a fresh store, an interface with a /16 and N peers written straight to
the database (the create path is bench/core_10k.py's), one reconcile pass so the in-memory
data plane holds them all and every page joins live stats (a recent handshake and moving
counters for every peer), then `GET /api/v1/interfaces/<if>/peers?limit=100` through the
ASGI app with a bearer token, `--requests` times at each depth: `offset=D`, and
`after=<cursor of row D-1>` (what a client holds after walking to D by `next`). Prints
p50/p95/max of the request's wall time in this process; never asserts. PostgreSQL is a
private cluster (tests/pg.py) started and removed here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pg import Cluster, unavailable

from wirewarden.bootstrap import build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.keys import generate_keypair
from wirewarden.domain.state import DeviceDump, PeerStats
from wirewarden.services import keyset
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import InterfaceCreate
from wirewarden.store.tables import Interface, Peer
from wirewarden.web.app import create_app

IFNAME = "wgpage"
DEPTHS = (0, 1_000, 2_500, 4_900, 7_500, 9_900)


class LiveDataplane(FakeDataplane):
    """The fake data plane, with a recent handshake and moving counters for every peer."""

    def dump_all(self) -> dict[str, DeviceDump]:
        now = int(time.time())
        out: dict[str, DeviceDump] = {}
        for name, dev in self.devices.items():
            stats = {
                key: PeerStats(f"192.0.2.{i % 250 + 1}:51820", now - i % 400, now + i, now + i)
                for i, key in enumerate(dev.peers)
            }
            out[name] = DeviceDump(dev.private_key, dev.listen_port, dict(dev.peers), stats)
        return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def populate(container: Any, peers: int) -> None:
    container.interfaces.create(InterfaceCreate(name=IFNAME, address="10.100.0.1/16"), SYSTEM)
    with container.deps.sessions.begin() as db:
        iface_id = db.query(Interface.id).filter(Interface.name == IFNAME).scalar()
        rows = [
            {
                "interface_id": iface_id,
                "name": f"peer-{i:05d}",
                "host_index": i + 1,
                "ipv4": f"10.100.{(i + 1) // 256}.{(i + 1) % 256}",
                "public_key": generate_keypair().public_key,
                "allowed_ips": "0.0.0.0/0, ::/0",
                "routed_ips": "",
                "enabled": True,
                "sync_state": "applied",
            }
            for i in range(1, peers + 1)
        ]
        db.execute(insert(Peer), rows)
    container.reconciler.reconcile()


def measure(label: str, url: str | None, peers: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", public_host="192.0.2.1", database_url=url)
        container = build(settings, dataplane=LiveDataplane(), stats_max_age=2.0)
        try:
            populate(container, peers)
            token = container.tokens.create("bench", ["read"], SYSTEM)
            app = create_app(container, run_loop=False)
            with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
                run(label, client, peers, requests)
        finally:
            container.engine.dispose()


def run(label: str, client: TestClient, peers: int, requests: int) -> None:
    path = f"/api/v1/interfaces/{IFNAME}/peers"
    for _ in range(20):  # warm the stats cache, the pool and the query plans
        client.get(path, params={"limit": 100})
    print(f"\n{label}: {peers} peers, page of 100, {requests} requests per depth (ms)")
    print(f"{'depth':>6} | {'OFFSET p50':>10} {'p95':>7} {'max':>7} | {'cursor p50':>10} "
          f"{'p95':>7} {'max':>7}")  # fmt: skip
    for depth in (d for d in DEPTHS if d < peers):
        cursor = keyset.encode(f"peer-{depth:05d}") if depth else None
        by_offset = timed(client, path, {"limit": 100, "offset": depth}, requests)
        by_cursor = timed(client, path, {"limit": 100, "after": cursor}, requests)
        print(f"{depth:>6} | {statistics.median(by_offset):>10.1f} {pct(by_offset, 95):>7.1f} "
              f"{max(by_offset):>7.1f} | {statistics.median(by_cursor):>10.1f} "
              f"{pct(by_cursor, 95):>7.1f} {max(by_cursor):>7.1f}")  # fmt: skip


def timed(client: TestClient, path: str, params: dict[str, Any], n: int) -> list[float]:
    params = {k: v for k, v in params.items() if v is not None}
    times = []
    first = None
    for _ in range(n):
        t0 = time.perf_counter()
        answer = client.get(path, params=params)
        times.append((time.perf_counter() - t0) * 1000)
        answer.raise_for_status()
        first = first or answer.json()["items"][0]["name"]
    assert first is not None  # the page was not empty: a real page was timed
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    measure("SQLite (WAL file)", None, args.peers, args.requests)
    if args.no_postgres:
        return
    why = unavailable()
    if why:
        print(f"\nPostgreSQL skipped: {why}")
        return
    cluster = Cluster.start()
    try:
        measure("PostgreSQL 15 (Unix socket)", cluster.url(cluster.create_database()),
                args.peers, args.requests)  # fmt: skip
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()

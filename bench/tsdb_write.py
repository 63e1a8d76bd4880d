"""The metrics and DNS-log write paths alone, on SQLite or PostgreSQL: no namespace, no root.
Wall time and this process's CPU time (steadier on a shared machine).

    .venv/bin/python bench/tsdb_write.py                          # SQLite file in a temp dir
    .venv/bin/python bench/tsdb_write.py --url postgresql+psycopg://postgres@/db?host=/tmp/s

Times `TrafficStore.record` of one collection pass at N (10,000) peers, every peer moving
(a raw upsert per peer and per interface, a counters upsert per peer, an endpoint row for
1 % of them), `--passes` times; and `DnsStore.write_log` of a batch of `--dns-rows` (2,000)
query-log rows. The database must be empty (or the SQLite default): it is migrated and
filled here. Prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from wirewarden.domain.traffic import Counters
from wirewarden.store import schema
from wirewarden.store.db import make_engine, make_sessions
from wirewarden.store.dns import DnsStore
from wirewarden.store.tables import Interface, Node, Peer, Tenant
from wirewarden.store.tsdb import Batch, Delta, TrafficStore


def fill(engine: object, peers: int) -> None:
    with Session(engine) as db, db.begin():  # type: ignore[call-overload]
        node = Node(name="local", revision=1)
        tenant = Tenant(name="default")
        db.add_all([node, tenant])
        db.flush()
        iface = Interface(
            tenant_id=tenant.id, node_id=node.id, name="wg0", ipv4="10.0.0.1/8", ipv6=None,
            listen_port=51820, private_key_enc=b"x", public_key="p", endpoint=None,
        )  # fmt: skip
        db.add(iface)
        db.flush()
        db.execute(
            insert(Peer),
            [
                {
                    "interface_id": iface.id,
                    "name": f"p{i}",
                    "host_index": i + 2,
                    "ipv4": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                    "ipv6": None,
                    "public_key": f"{i:043d}=",
                    "allowed_ips": "0.0.0.0/0",
                }
                for i in range(peers)
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="database URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--peers", type=int, default=10_000)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--dns-rows", type=int, default=2_000)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    fill(engine, args.peers)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM peers ORDER BY id")]
        iface = conn.exec_driver_sql("SELECT id FROM interfaces").scalar_one()
    store = TrafficStore(engine)
    t0, times, cpus = 1_800_000_000, [], []
    for n in range(args.passes):
        t = t0 + 10 * n
        batch = Batch(
            t=t,
            peers=[Delta(pid, 1000 + n, 2000 + n) for pid in ids],
            interfaces=[Delta(iface, 1000 * len(ids), 2000 * len(ids))],
            counters=[
                (pid, Counters(f"{pid:043d}=", 1000 * n, 2000 * n, t, "192.0.2.1:5000"))
                for pid in ids
            ],
            endpoints=[(pid, f"198.51.100.{pid % 250}:{pid}") for pid in ids[::100]],
        )
        start, cpu = time.perf_counter(), time.process_time()
        store.record(batch)
        times.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    dns = DnsStore(make_sessions(engine), "local")
    now = time.time()
    record = (now, ids[0], "p0", "10.0.0.2", "default", "example.com.", 1, "allowed", None, 0,
              "udp://192.0.2.53:53", 1.5, 1)  # fmt: skip
    rows = [(now + i / 1000, *record[1:]) for i in range(args.dns_rows)]
    dns_times = []
    for _ in range(5):
        start = time.perf_counter()
        dns.write_log(rows)
        dns_times.append(time.perf_counter() - start)
    engine.dispose()
    load = os.getloadavg()[0]
    print(f"database: {engine.dialect.name}; load average {load:.2f}")
    print(
        f"record() of {len(ids)} peers: median {statistics.median(times) * 1000:.0f} ms, "
        f"min {min(times) * 1000:.0f} ms over {len(times)} passes; CPU of this process "
        f"median {statistics.median(cpus) * 1000:.0f} ms (the database's own on PostgreSQL "
        "is not in it)"
    )
    print(
        f"write_log() of {len(rows)} rows: median {statistics.median(dns_times) * 1000:.1f} ms, "
        f"min {min(dns_times) * 1000:.1f} ms"
    )
    tmp.cleanup()


if __name__ == "__main__":
    main()

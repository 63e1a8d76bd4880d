"""What a reconcile pass pays to learn the desired state after one peer change, at N peers:
the full read (a revision nobody announced) against the delta read (a change the applier
noted), in-process with the in-memory data plane on SQLite. Prints figures, asserts nothing.

    .venv/bin/python bench/delta_read.py [--peers 10000] [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import update

from wirewarden.bootstrap import build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import InterfaceCreate, PeerCreate, PeerUpdate
from wirewarden.store.tables import Node


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.1f} ms, min {min(values) * 1000:.1f} ms"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--peers", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=30)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", public_host="vpn.example.test")
        c = build(settings, dataplane=FakeDataplane(), stats_max_age=0)
        c.interfaces.create(InterfaceCreate(name="wgd0", address="10.70.0.1/16"), SYSTEM)
        started = time.perf_counter()
        ids = [
            c.peers.create("wgd0", PeerCreate(name=f"p{i:05d}"), SYSTEM).id
            for i in range(args.peers)
        ]
        print(f"{args.peers} peers created in {time.perf_counter() - started:.1f} s")
        reconciler = c.reconciler
        reader = reconciler.source  # the DesiredStateReader (also on main, for an A/B)
        reconciler.reconcile()
        full: list[float] = []
        delta: list[float] = []
        for r in range(args.rounds):
            # A change another process made: no note, so the pass reads everything.
            with c.deps.sessions.begin() as db:
                db.execute(update(Node).values(revision=Node.revision + 1))
            t0 = time.perf_counter()
            reader()
            full.append(time.perf_counter() - t0)
            # One peer changed through the service: noted, so the pass reads that peer.
            keepalive = 25 if r % 2 else 15
            c.peers.update(
                ids[r * 7 % len(ids)], PeerUpdate(persistent_keepalive=keepalive), SYSTEM
            )
            t0 = time.perf_counter()
            reader()
            delta.append(time.perf_counter() - t0)
        print(f"desired-state read after a change, {args.rounds} rounds, {args.peers} peers:")
        print(f"  full read (change not announced): {ms(full)}")
        print(f"  delta read (one peer noted):      {ms(delta)}")
        print(f"  full reads by the reader: {getattr(reader, 'full_reads', '-')}")
        c.engine.dispose()


if __name__ == "__main__":
    main()

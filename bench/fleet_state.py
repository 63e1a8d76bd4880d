"""What the control plane pays to send a fleet node its state, at N peers on the node: the
whole document (an agent's first connection: read, encode, digest) and the delta after
one peer change (a noted delta read, the merge patch, the digest carried forward), with
the bytes each puts on the wire. In-process on SQLite (the node row is made directly:
the fleet proper needs PostgreSQL, the work measured here does not). Prints figures,
asserts nothing.

    .venv/bin/python bench/fleet_state.py [--peers 10000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from netns_run import spread
from wirewarden.bootstrap import build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.fleet.protocol import Delta, Snapshot, encode
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import InterfaceCreate, PeerCreate, PeerUpdate
from wirewarden.store.tables import Node
from wirewarden.web.agent import AgentHub


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--peers", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", public_host="vpn.example.test")
        c = build(settings, dataplane=FakeDataplane(), stats_max_age=0)
        with c.deps.sessions.begin() as db:
            db.add(Node(name="n1", revision=0))
        c.interfaces.create(InterfaceCreate(name="wgn1", address="10.70.0.1/16", node="n1"), SYSTEM)
        started = time.perf_counter()
        ids = [
            c.peers.create("wgn1", PeerCreate(name=f"p{i:05d}"), SYSTEM).id
            for i in range(args.peers)
        ]
        print(f"{args.peers} peers created on node n1 in {time.perf_counter() - started:.1f} s")
        hub = AgentHub(c)
        snapshots: list[float] = []
        size = 0
        for _ in range(args.rounds):
            c.states.forget("n1")  # a cold reader: what a replica pays for a new session
            t0 = time.perf_counter()
            revision, doc, digest, state = hub.read("n1")
            text = encode(Snapshot(revision=revision, hash=digest, state=doc))
            snapshots.append(time.perf_counter() - t0)
            size = len(text)
        deltas: list[float] = []
        delta_size = 0
        for r in range(args.rounds):
            # One peer disabled, then enabled again: its record changes each round.
            c.peers.update(ids[0], PeerUpdate(enabled=bool(r % 2)), SYSTEM)
            t0 = time.perf_counter()
            found = hub.read_since("n1", doc, digest, state)
            assert found is not None
            revision, doc, digest, change, state = found
            text = encode(Delta(base=revision - 1, revision=revision, hash=digest, patch=change))
            deltas.append(time.perf_counter() - t0)
            delta_size = len(text)
        print(f"node state for an agent, {args.peers} peers, {args.rounds} rounds:")
        print(f"  snapshot (read, document, digest, JSON): {spread(snapshots)}; {size} bytes")
        print(f"  delta after one peer change:              {spread(deltas)}; {delta_size} bytes")
        c.engine.dispose()


if __name__ == "__main__":
    main()

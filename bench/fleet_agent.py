"""What a fleet node's agent pays to take its state in, at N peers: a snapshot (digest
check, the document turned into the desired state, sealed to disk) and the delta of one
peer change (the patch, the digest carried forward, the state rebuilt, sealed), with
what the control plane pays to make the same delta in this run for comparison. The
state is synthetic (N peers with speed limits and caps on one interface), the disk is
the data dir's. Prints figures, asserts nothing; no root needed.

    .venv/bin/python bench/fleet_agent.py [--peers 10000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from netns_run import spread
from wirewarden.agent.files import SealedFiles
from wirewarden.agent.held import HeldState
from wirewarden.domain.policy import Cap, PeerPolicy, PolicyState
from wirewarden.domain.state import DesiredState, InterfaceState, NatNetwork, PeerState
from wirewarden.domain.statediff import diff, digest
from wirewarden.fleet.protocol import Delta, NodeState, encode, snapshot, to_document


def state(peers: int, revision: int, rate: int = 1000) -> NodeState:
    states, policies = {}, []
    for i in range(peers):
        key = f"{i:043d}="
        address = f"10.70.{i // 250}.{i % 250 + 2}"
        states[key] = PeerState(key, (f"{address}/32",), preshared_key=None)
        policies.append(
            PeerPolicy(
                "wgn1",
                i + 1,
                i + 1,
                address,
                rate_down_kbit=rate if i == 0 else 1000,
                cap=Cap(10**9, 1_700_000_000) if i % 3 == 0 else None,
            )
        )
    iface = InterfaceState("wgn1", "k" * 43 + "=", 51820, ("10.70.0.1/16",), 1420, states)
    desired = DesiredState(
        {"wgn1": iface},
        frozenset({"wgn1"}),
        (NatNetwork("wgn1", "10.70.0.0/16"),),
        None,
        revision=revision,
        policy=PolicyState(peers=tuple(policies), interfaces=("wgn1",)),
    )
    return NodeState(desired)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--peers", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()
    base = state(args.peers, 1)
    sent, doc, _ = snapshot(base, 1)
    print(f"{args.peers} peers: snapshot {len(encode(sent)) / 1e6:.1f} MB on the wire")
    with tempfile.TemporaryDirectory() as tmp:
        held = HeldState(SealedFiles(Path(tmp) / "agent"))
        snaps = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            held.take(sent)
            snaps.append(time.perf_counter() - t0)
        print(f"agent takes a snapshot in: {spread(snaps)}")
        saves = []
        for _ in range(args.rounds):
            held._saved = -1  # force the write
            t0 = time.perf_counter()
            held.save()
            saves.append(time.perf_counter() - t0)
        print(f"then seals it to disk (off the apply path) in: {spread(saves)}")
        deltas, makes = [], []
        revision = 1
        for r in range(args.rounds):
            new = state(args.peers, revision + 1, rate=2000 + r)
            t0 = time.perf_counter()
            new_doc = to_document(new)
            change = diff(doc, new_doc)
            made = Delta(base=revision, revision=revision + 1, hash=digest(new_doc), patch=change)
            makes.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            held.take(made)
            deltas.append(time.perf_counter() - t0)
            doc, revision = new_doc, revision + 1
        print(f"agent takes a one-peer delta in: {spread(deltas)}")
        print(f"(this run, the same delta made by a whole diff and digest: {spread(makes)})")
        assert held.held is not None and held.held.revision == revision
        print(f"sealed state file: {(Path(tmp) / 'agent' / 'state').stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

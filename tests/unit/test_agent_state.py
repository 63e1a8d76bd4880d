"""The agent's held state, its sealed files and its report outbox, with plain values."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.test_fleet_protocol import _state
from wirewarden.agent.files import KEY, SealedFiles
from wirewarden.agent.held import FILE, HeldState, Resync, received
from wirewarden.agent.outbox import DIR, MAX_ROWS, Outbox
from wirewarden.domain.statediff import diff, digest
from wirewarden.fleet.protocol import Current, Delta, NodeState, snapshot, to_document


def _delta(old: NodeState, new: NodeState, base: int, revision: int) -> Delta:
    doc = to_document(new)
    return Delta(base=base, revision=revision, hash=digest(doc), patch=diff(to_document(old), doc))


def test_a_delta_applies_only_on_its_base_and_only_if_it_lands_on_its_digest() -> None:
    first = _state(20)
    held = received(None, snapshot(first, 7)[0])
    assert held is not None and held.state == first
    fewer = replace(first, desired=replace(first.desired, revision=8, nat=()))
    moved = received(held, _delta(first, fewer, 7, 8))
    assert moved is not None and (moved.revision, moved.state) == (8, fewer)
    with pytest.raises(Resync):  # a delta from a revision not held (one was missed)
        received(held, _delta(first, fewer, 6, 8))
    forged = _delta(first, fewer, 7, 8).model_copy(update={"hash": "0" * 64})
    with pytest.raises(Resync):
        received(held, forged)
    with pytest.raises(Resync):  # nothing held: only a snapshot will do
        received(None, _delta(first, fewer, 7, 8))


def test_a_snapshot_that_does_not_digest_to_its_hash_and_a_wrong_current_ask_for_a_resync() -> None:
    sent = snapshot(_state(5), 3)[0]
    with pytest.raises(Resync):
        received(None, sent.model_copy(update={"hash": "1" * 64}))
    held = received(None, sent)
    assert received(held, Current(revision=3, hash=sent.hash)) is None
    with pytest.raises(Resync):
        received(held, Current(revision=4, hash=sent.hash))


def test_the_held_state_survives_a_restart_sealed_in_a_0600_file(tmp_path: Path) -> None:
    files = SealedFiles(tmp_path / "agent")
    held = HeldState(files)
    assert held.revision() == 0 and held().interfaces == {}
    state = _state(30)
    held.take(snapshot(state, 7)[0])
    held.save()
    on_disk = files.path(FILE)
    assert stat.S_IMODE(on_disk.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "agent" / KEY).stat().st_mode) == 0o600
    # The interface's private key is not readable in the file.
    assert b"kkkkkkkk" not in on_disk.read_bytes()
    again = HeldState(SealedFiles(tmp_path / "agent"))
    loaded = again.load()
    assert loaded is not None and (loaded.revision, loaded.state) == (7, state)
    assert again() == state.desired


def test_a_state_file_that_does_not_open_is_no_state(tmp_path: Path) -> None:
    files = SealedFiles(tmp_path / "a")
    first = HeldState(files)
    first.take(snapshot(_state(3), 2)[0])
    first.save()
    other = SealedFiles(tmp_path / "b")
    other.path(FILE).write_bytes(files.path(FILE).read_bytes())  # another node's key
    assert HeldState(other).load() is None
    damaged = bytearray(files.path(FILE).read_bytes())
    damaged[-1] ^= 1
    files.path(FILE).write_bytes(bytes(damaged))
    assert HeldState(files).load() is None


def test_interfaces_an_earlier_state_managed_stay_managed_until_torn_down(tmp_path: Path) -> None:
    held = HeldState(SealedFiles(tmp_path))
    first = _state(2)
    held.take(snapshot(first, 1)[0])
    assert {"wg1", "t-acme"} <= first.desired.managed
    only = replace(first, desired=replace(first.desired, revision=2, managed=frozenset({"wg0"})))
    held.take(snapshot(only, 2)[0])
    held.save()
    # The reconciler is told they are ours and wanted by no interface: it removes them.
    assert held().managed == {"wg0", "wg1", "t-acme"}
    assert set(held().interfaces) == {"wg0"}
    reloaded = HeldState(SealedFiles(tmp_path))
    reloaded.load()
    assert reloaded().managed == {"wg0", "wg1", "t-acme"}


def _sample(i: int) -> dict[str, object]:
    return {"t": 1, "interface": "wg0", "public_key": f"{i:043d}=", "rx": i, "tx": i}


def test_report_batches_are_numbered_split_kept_until_acked_and_bounded(tmp_path: Path) -> None:
    files = SealedFiles(tmp_path)
    box = Outbox(files, max_batches=3)
    box.add(samples=[_sample(i) for i in range(MAX_ROWS + 10)], quotas={"cap_1_0_5": 3})  # type: ignore[misc]
    assert box.seal() == 2
    assert box.seal() == 0  # nothing new
    batches = box.batches()
    assert [b.seq for b in batches] == [1, 2]
    assert [len(b.samples) for b in batches] == [MAX_ROWS, 10]
    assert batches[0].quotas == {"cap_1_0_5": 3} and batches[1].quotas == {}
    box.acked(1)
    assert [b.seq for b in Outbox(files, 3).batches()] == [2]
    for i in range(4):
        box.add(dns_log=[{"at": float(i)}])
        box.seal()
    # Three kept at most: the oldest went first.
    assert [b.seq for b in box.batches()] == [4, 5, 6]
    for seq in (2, 4, 5, 6):
        box.acked(seq)
    # A seq is never used twice for one credential, even across a restart.
    later = Outbox(files, 3)
    later.add(dns_log=[{"at": 9.0}])
    later.seal()
    assert [b.seq for b in later.batches()] == [7]
    later.restart()
    assert later.batches() == [] and not os.listdir(tmp_path / DIR)


def test_report_rows_of_every_kind_share_a_batch_s_room(tmp_path: Path) -> None:
    box = Outbox(SealedFiles(tmp_path), max_batches=10)
    box.add(samples=[_sample(i) for i in range(MAX_ROWS - 5)])  # type: ignore[misc]
    box.add(dns_log=[{"at": 1.0}] * 3, apps=[{"address": "10.8.0.2", "mark": i} for i in range(9)])
    box.add(names=[{"name": "a.test"}], exposed=[{"port": 80}, {"port": 81}])
    assert box.seal() == 2
    first, second = box.batches()
    assert (len(first.samples), len(first.dns_log), len(first.apps)) == (MAX_ROWS - 5, 3, 2)
    assert (len(second.samples), len(second.dns_log), len(second.apps)) == (0, 0, 7)
    assert [a["mark"] for a in first.apps + second.apps] == list(range(9))
    assert (second.names, second.exposed) == ([{"name": "a.test"}], [{"port": 80}, {"port": 81}])


def test_the_uplink_and_the_public_addresses_are_the_nodes_own(tmp_path: Path) -> None:
    """The control plane's addresses are not a node's: published ports are reached at the
    node's WIREWARDEN_EXPOSE_LISTEN, else at its uplink's addresses."""
    sent = snapshot(replace(_state(2), desired=replace(_state(2).desired, uplink="cp0")), 1)[0]
    own = HeldState(SealedFiles(tmp_path / "own"), "ens3", ("203.0.113.7",))
    own.take(sent)
    assert (own().uplink, own().expose_listen) == ("ens3", ("203.0.113.7",))
    default = HeldState(SealedFiles(tmp_path / "default"), "ens3")
    default.take(sent)
    assert (default().uplink, default().expose_listen) == ("ens3", ())

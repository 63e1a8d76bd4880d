"""The reconciler against the in-memory data plane: convergence, idempotence, failures, loop."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.render import nft_ruleset
from wirewarden.domain.state import DesiredState, InterfaceState, NatNetwork, PeerState
from wirewarden.reconciler.actions import SetPeers
from wirewarden.reconciler.engine import Backoff, Loop, Reconciler
from wirewarden.reconciler.executor import GLOBAL, Report

KEY0 = "c2VydmVyLXByaXZhdGUta2V5LTMyLWJ5dGVzLWxvbmc="
KEY1 = "b3RoZXItcHJpdmF0ZS1rZXktMzItYnl0ZXMtbG9uZyE="
A = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="
B = "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI="

PEER_A = PeerState(A, ("10.8.0.2/32",), "cHJlc2hhcmVkLWtleS0zMi1ieXRlcy1sb25nLW9rISE=")
PEER_B = PeerState(B, ("10.8.0.3/32", "192.168.7.0/24"))
WG0 = InterfaceState("wg0", KEY0, 51820, ("10.8.0.1/24",), 1420, {A: PEER_A, B: PEER_B})
WG1 = InterfaceState("wg1", KEY1, 51821, ("10.9.0.1/24", "fd00:9::1/64"), 1380, {})


def state(*ifaces: InterfaceState, uplink: str | None = None, revision: int = 0) -> DesiredState:
    nat = tuple(
        NatNetwork(i.name, str(ipaddress.ip_interface(a).network))
        for i in ifaces
        for a in i.addresses
    )
    names = frozenset(i.name for i in ifaces)
    return DesiredState({i.name: i for i in ifaces}, names, nat, uplink, revision)


class Source:
    """A desired-state source that is just a value (and its revision)."""

    def __init__(self, desired: DesiredState) -> None:
        self.desired = desired

    def __call__(self) -> DesiredState:
        return self.desired

    def revision(self) -> int:
        return self.desired.revision

    @contextmanager
    def pinned(self) -> Iterator[Source]:
        yield self

    def begin(self) -> frozenset[str]:
        return self().managed

    def read(self) -> DesiredState:
        return self()


class Sink:
    def __init__(self) -> None:
        self.reports: list[tuple[DesiredState, Report]] = []
        self.called = threading.Event()

    def __call__(self, desired: DesiredState, report: Report) -> None:
        self.reports.append((desired, report))
        self.called.set()


def test_converges_from_an_empty_kernel() -> None:
    fake = FakeDataplane()
    sink = Sink()
    report = Reconciler(Source(state(WG0, WG1)), fake, sink).reconcile()
    assert report.ok
    assert set(fake.devices) == {"wg0", "wg1"}
    wg0, wg1 = fake.devices["wg0"], fake.devices["wg1"]
    assert (wg0.up, wg0.mtu, wg0.addresses) == (True, 1420, {"10.8.0.1/24"})
    assert (wg0.private_key, wg0.listen_port) == (KEY0, 51820)
    assert wg0.peers == {A: PEER_A, B: PEER_B}
    assert (wg1.up, wg1.mtu, wg1.addresses) == (True, 1380, {"10.9.0.1/24", "fd00:9::1/64"})
    assert wg1.peers == {}
    assert fake.forwarding
    # No uplink desired: the data plane's default route interface is used.
    assert fake.digest == nft_ruleset(state(WG0, WG1).nat, "eth0")[1]
    assert len(sink.reports) == 1
    assert sink.reports[0][0].uplink == "eth0"
    assert sink.reports[0][1] is report


def test_second_pass_does_nothing() -> None:
    fake = FakeDataplane()
    reconciler = Reconciler(Source(state(WG0, WG1)), fake)
    reconciler.reconcile()
    calls = list(fake.calls)
    report = reconciler.reconcile()
    assert report.ok
    assert report.applied == []
    assert fake.calls == calls


def test_heals_drift() -> None:
    fake = FakeDataplane()
    reconciler = Reconciler(Source(state(WG0)), fake)
    reconciler.reconcile()
    zombie = PeerState("enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6eno=", ("10.8.0.9/32",))
    dev = fake.devices["wg0"]
    dev.peers.pop(A)
    dev.peers[zombie.public_key] = zombie
    dev.up = False
    dev.listen_port = 40000
    fake.digest = None
    assert reconciler.reconcile().ok
    assert dev.peers == {A: PEER_A, B: PEER_B}
    assert dev.up
    assert dev.listen_port == 51820
    assert fake.digest is not None
    # A crashed interface comes back whole.
    fake.devices.clear()
    assert reconciler.reconcile().ok
    assert fake.devices["wg0"].peers == {A: PEER_A, B: PEER_B}


def test_disabled_interface_is_torn_down() -> None:
    fake = FakeDataplane()
    source = Source(state(WG0, WG1))
    reconciler = Reconciler(source, fake)
    reconciler.reconcile()
    source.desired = replace(state(WG1, revision=1), managed=frozenset({"wg0", "wg1"}))
    assert reconciler.reconcile().ok
    assert set(fake.devices) == {"wg1"}


def test_a_failing_interface_does_not_stop_another() -> None:
    fake = FakeDataplane(fail_on={"set_peers"})
    reconciler = Reconciler(Source(state(WG0, WG1)), fake)
    report = reconciler.reconcile()
    assert set(report.errors) == {"wg0"}
    assert "injected failure in set_peers" in report.errors["wg0"]
    assert not report.ok
    # wg1 (no peers to set) converged, and so did the firewall and forwarding.
    assert fake.devices["wg1"].up
    assert fake.devices["wg1"].listen_port == 51821
    assert fake.digest is not None
    assert fake.forwarding
    assert fake.devices["wg0"].peers == {}
    # Once the data plane answers again, the next pass completes wg0.
    fake.fail_on.clear()
    report = reconciler.reconcile()
    assert report.ok
    assert report.applied == [SetPeers("wg0", (PEER_A, PEER_B))]
    assert fake.devices["wg0"].peers == {A: PEER_A, B: PEER_B}


def test_later_steps_of_a_failed_interface_are_skipped() -> None:
    fake = FakeDataplane(fail_on={"configure_device"})
    report = Reconciler(Source(state(WG0)), fake).reconcile()
    assert set(report.errors) == {"wg0"}
    wg0_calls = [c for c in fake.calls if c in {"configure_link", "set_peers"}]
    assert wg0_calls == []
    assert "apply_firewall" in fake.calls


def test_firewall_failure_is_reported_globally() -> None:
    fake = FakeDataplane(fail_on={"apply_firewall"})
    report = Reconciler(Source(state(WG0)), fake).reconcile()
    assert set(report.errors) == {GLOBAL}
    assert fake.devices["wg0"].peers == {A: PEER_A, B: PEER_B}


def test_replans_when_the_revision_moved_meanwhile() -> None:
    """A change committed between planning and applying is what gets applied."""
    fake = FakeDataplane()
    newer = state(replace(WG0, peers={A: PEER_A}), revision=2)

    class Moving(Source):
        def revision(self) -> int:
            self.desired = newer
            return newer.revision

    sink = Sink()
    report = Reconciler(Moving(state(WG0, revision=1)), fake, sink).reconcile()
    assert report.ok
    assert fake.devices["wg0"].peers == {A: PEER_A}
    assert sink.reports[0][0].revision == 2


def test_a_pass_under_constant_churn_still_ends_with_the_newest_state() -> None:
    """Each plan outside the lock goes stale; the last one is made under the lock."""
    fake = FakeDataplane()

    class Churning(Source):
        def __call__(self) -> DesiredState:
            self.desired = replace(self.desired, revision=self.desired.revision + 1)
            return self.desired

        def revision(self) -> int:
            return self.desired.revision + 1  # someone always committed since the read

    report = Reconciler(Churning(state(WG0)), fake).reconcile()
    assert report.ok
    assert fake.devices["wg0"].peers == {A: PEER_A, B: PEER_B}


def test_single_peer_operations_go_straight_to_the_data_plane() -> None:
    fake = FakeDataplane()
    reconciler = Reconciler(Source(state(WG0)), fake)
    reconciler.reconcile()
    extra = PeerState("Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2M=", ("10.8.0.4/32",))
    reconciler.apply_peer("wg0", extra)
    assert extra.public_key in fake.devices["wg0"].peers
    reconciler.remove_peer("wg0", A)
    assert A not in fake.devices["wg0"].peers
    reconciler.teardown("wg0")
    assert "wg0" not in fake.devices


# ---- backoff and loop


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(first=0.5, cap=4.0)
    assert [backoff.failed() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.succeeded()
    assert backoff.current == 0.0
    assert backoff.failed() == 0.5


@pytest.mark.parametrize(
    ("fail_on", "expected"),
    [(set(), [30.0, 30.0]), ({"set_peers"}, [0.5, 1.0])],
)
def test_loop_pass_waits_the_period_or_backs_off(fail_on: set[str], expected: list[float]) -> None:
    fake = FakeDataplane(fail_on=set(fail_on))
    loop = Loop(Reconciler(Source(state(WG0)), fake), period=30.0)
    assert [loop._pass(), loop._pass()] == expected


def test_loop_survives_a_broken_pass_and_recovers() -> None:
    class Broken(Source):
        def __call__(self) -> DesiredState:
            raise RuntimeError("database gone")

    loop = Loop(Reconciler(Broken(state(WG0)), FakeDataplane()), period=10.0)
    assert loop._pass() == 0.5
    assert loop._pass() == 1.0
    loop.reconciler.source = Source(state(WG0))
    assert loop._pass() == 10.0
    assert loop.backoff.current == 0.0


def test_loop_runs_a_pass_at_start_and_on_trigger() -> None:
    fake = FakeDataplane()
    sink = Sink()
    source = Source(state(WG0))
    loop = Loop(Reconciler(source, fake, sink), period=60.0)
    loop.start()
    try:
        assert sink.called.wait(5)
        assert fake.devices["wg0"].peers == {A: PEER_A, B: PEER_B}
        sink.called.clear()
        source.desired = state(WG0, WG1, revision=1)
        loop.trigger()  # long before the 60 s period
        assert sink.called.wait(5)
        assert "wg1" in fake.devices
    finally:
        loop.stop()
    assert loop._thread is not None
    assert not loop._thread.is_alive()

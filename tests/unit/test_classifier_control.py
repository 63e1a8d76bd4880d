"""When classification runs: the queue rules and the reader follow the desired state."""

from __future__ import annotations

from wirewarden.domain.classify.steering import Steering
from wirewarden.domain.policy import PeerPolicy, PolicyState
from wirewarden.domain.state import DesiredState, InterfaceState
from wirewarden.runtime.classifier import ClassifierControl, Mode


class Reader:
    def __init__(self) -> None:
        self.events: list[str] = []

    def start(self, ready_timeout: float) -> bool:
        self.events.append("start")
        return True

    def stop(self, timeout: float = 5.0) -> None:
        self.events.append("stop")


def _state(*blocks: tuple[str, ...], interfaces: tuple[str, ...] = ("wg0",)) -> DesiredState:
    peers = tuple(
        PeerPolicy("wg0", n, n + 2, f"10.8.0.{n + 2}", block_apps=apps)
        for n, apps in enumerate(blocks)
    )
    ifaces = {name: InterfaceState(name, "k", 51820, ("10.8.0.1/24",), 1420) for name in interfaces}
    return DesiredState(ifaces, frozenset(ifaces), (), None, policy=PolicyState(peers=peers))


def _control(mode: Mode) -> tuple[ClassifierControl, Reader, list[object]]:
    reader, calls = Reader(), list[object]()  # Steering applied, or "off"
    control = ClassifierControl(mode, 9, reader, calls.append, lambda: calls.append("off"))
    control.armed = True
    return control, reader, calls


def test_auto_runs_while_some_peer_blocks_a_class() -> None:
    control, reader, calls = _control("auto")
    control(_state((), ()))
    assert (reader.events, calls) == ([], [])
    control(_state((), ("bittorrent",)))
    control(_state((), ("bittorrent",)))  # nothing new: nothing redone
    assert (reader.events, calls) == (["start"], [Steering(9, ("wg0",))])
    control(_state((), ("bittorrent",), interfaces=("wg0", "wg1")))
    assert calls[-1] == Steering(9, ("wg0", "wg1"))
    control(_state((), ()))
    assert reader.events == ["start", "stop"]
    assert calls[-1:] == ["off"]


def test_on_and_off_ignore_the_policies() -> None:
    on, on_reader, _ = _control("on")
    on(_state(()))
    assert on_reader.events == ["start"]
    off, off_reader, off_calls = _control("off")
    off(_state(("ssh",)))
    assert (off_reader.events, off_calls) == ([], [])


def test_a_process_that_did_not_arm_it_never_starts_a_reader() -> None:
    control, reader, calls = _control("on")
    control.armed = False  # a CLI command's one-off pass
    control(_state(("ssh",)))
    assert (reader.events, calls) == ([], [])

"""`LocalApplier`: the applier of the node `serve` runs itself (apply before answer)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from wirewarden.domain.errors import DataplaneError
from wirewarden.domain.exposure import Forward
from wirewarden.domain.firewall import KernelCounts, Quota
from wirewarden.domain.policy import PeerPolicy
from wirewarden.domain.state import DeviceDump, HostFootprint, PeerState
from wirewarden.reconciler.engine import Loop, Reconciler
from wirewarden.services.applier import ApplyFailed, Change

# Told that a revision changed only these peers (the desired-state reader's delta).
Note = Callable[[int, frozenset[int]], None]


@contextmanager
def refused() -> Iterator[None]:
    """The data plane's error as the services know it."""
    try:
        yield
    except DataplaneError as exc:
        raise ApplyFailed(str(exc)) from exc


class LocalApplier:
    """Applies through this host's reconciler, under its lock; a change it did not apply
    (or that touches whole sections) wakes the reconciler loop."""

    def __init__(self, reconciler: Reconciler, loop: Loop, node: str, note: Note) -> None:
        self.reconciler, self.loop, self.node, self.note = reconciler, loop, node, note

    def turn(self) -> AbstractContextManager[object]:
        return self.reconciler.lock

    def set_peer(self, interface: str, peer: PeerState) -> None:
        with refused():
            self.reconciler.apply_peer(interface, peer)

    def remove_peer(self, interface: str, public_key: str) -> None:
        with refused():
            self.reconciler.remove_peer(interface, public_key)

    def set_policy(self, old: PeerPolicy | None, new: PeerPolicy | None, leaf: str) -> None:
        with refused():
            self.reconciler.apply_policy(old, new, leaf)

    def set_forwards(self, interface: str, old: Sequence[Forward], new: Sequence[Forward]) -> None:
        with refused():
            self.reconciler.apply_forwards(old, new)

    def remove_interface(self, name: str) -> None:
        with refused():
            self.reconciler.teardown(name)

    def apply(self, change: Change) -> None:
        self._note(change)
        self.reconciler.reconcile()

    def changed(self, change: Change) -> None:
        self._note(change)
        if not change.applied:
            self.loop.trigger()

    def _note(self, change: Change) -> None:
        if change.node == self.node and change.revision is not None and not change.full:
            self.note(change.revision, change.peers)

    def quotas(self, prefix: str) -> dict[str, Quota]:
        with refused():
            return self.reconciler.observe_quotas(prefix)

    def kernel_counts(self) -> KernelCounts:
        with refused():
            return self.reconciler.observe_kernel_counts()

    def host_footprint(self, ours: frozenset[str]) -> HostFootprint:
        return self.reconciler.host_footprint(ours)


def guarded_stats(
    stats: Callable[[], dict[str, DeviceDump]],
) -> Callable[[], dict[str, DeviceDump]]:
    """Live counters whose failure is the services' ApplyFailed."""

    def read() -> dict[str, DeviceDump]:
        with refused():
            return stats()

    return read

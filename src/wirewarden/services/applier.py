"""The port between the use cases and a node's data plane, declared by its consumer.

A use case commits, bumps the node's revision and hands what changed to an `Applier`. On
the node `serve` runs itself that is `runtime.applier.LocalApplier` (apply before answer,
under the host lock); a fleet's applier notifies the node's agent instead. Services see
neither the reconciler nor a driver: only this protocol and `ApplyFailed`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from wirewarden.domain.exposure import Forward
from wirewarden.domain.policy import PeerPolicy
from wirewarden.domain.state import HostFootprint, PeerState

if TYPE_CHECKING:
    # The firewall renderer loads with the node runtime, not with every CLI command.
    from wirewarden.domain.firewall import KernelCounts, Quota

# The parts of a node's desired state a change can touch besides single peers: a change
# naming one of these needs a full pass; one naming only peers can be applied as a delta.
INTERFACES, FIREWALL, DNS = "interfaces", "firewall", "dns"


@dataclass(frozen=True)
class Change:
    """What a committed change touched on one node: peer ids and whole sections, as of the
    node revision it bumped to (None: not known, e.g. several nodes bumped at once)."""

    node: str
    revision: int | None
    peers: frozenset[int] = field(default_factory=frozenset)
    sections: frozenset[str] = field(default_factory=frozenset)
    # The kernel already holds it (applied before the commit): nothing left to converge.
    applied: bool = False

    @classmethod
    def of_peers(
        cls, node: str, revision: int | None, ids: Iterable[int], applied: bool = False
    ) -> Change:
        return cls(node, revision, peers=frozenset(ids), applied=applied)

    @classmethod
    def of(cls, node: str, revision: int | None, *sections: str) -> Change:
        return cls(node, revision, sections=frozenset(sections))

    @property
    def full(self) -> bool:
        """Whether only a full pass applies it: it names a section, or its revision is not
        known (a delta of its peers could miss a change made beside it)."""
        return bool(self.sections) or self.revision is None


class ApplyFailed(RuntimeError):
    """The data plane refused a change or did not answer; the message says why."""


class Applier(Protocol):
    def turn(self) -> AbstractContextManager[object]:
        """Held from a change's first read to its commit: one writer to the node's data
        plane at a time (allocations read, apply and commit in this turn)."""
        ...

    def set_peer(self, interface: str, peer: PeerState) -> None:
        """Add or update one peer now; raises ApplyFailed."""
        ...

    def remove_peer(self, interface: str, public_key: str) -> None:
        """Remove one peer now; raises ApplyFailed."""
        ...

    def set_policy(self, old: PeerPolicy | None, new: PeerPolicy | None, leaf: str) -> None:
        """One peer's firewall and shaping from `old` to `new` now; raises ApplyFailed."""
        ...

    def set_forwards(self, interface: str, old: Sequence[Forward], new: Sequence[Forward]) -> None:
        """One peer's published ports from `old` to `new` now (on the node of
        `interface`; another node's converge through their state); raises ApplyFailed."""
        ...

    def remove_interface(self, name: str) -> None:
        """Take an interface's device away now; raises ApplyFailed."""
        ...

    def apply(self, change: Change) -> None:
        """Converge the node to a committed change before answering (interface changes:
        links, addresses, firewall). A failure is recorded in the sync state, not raised."""
        ...

    def changed(self, change: Change) -> None:
        """A committed change the node converges to soon (or one the kernel refused)."""
        ...

    def quotas(self, prefix: str) -> dict[str, Quota]:
        """What the kernel's quotas named `prefix*` have counted; raises ApplyFailed."""
        ...

    def kernel_counts(self) -> KernelCounts:
        """Classified traffic by peer address and class, and published ports' traffic by
        target, on this host; raises ApplyFailed."""
        ...

    def host_footprint(self, ours: frozenset[str]) -> HostFootprint:
        """What of the host is not ours (networks, UDP ports, links) outside `ours`."""
        ...

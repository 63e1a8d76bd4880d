"""The control plane's side of remote nodes: their desired state as the agent endpoint
sends it (`NodeStates`), and the applier that keeps changes to another node's interfaces
off this host's kernel (`FleetApplier`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from sqlalchemy.orm import Session

from wirewarden.domain.dnsstate import DnsDirectory
from wirewarden.domain.exposure import Forward
from wirewarden.domain.firewall import KernelCounts, Quota
from wirewarden.domain.policy import PeerPolicy
from wirewarden.domain.state import HostFootprint, PeerState
from wirewarden.fleet.protocol import NodeState
from wirewarden.services.applier import INTERFACES, Applier, ApplyFailed, Change
from wirewarden.store.desired import DesiredStateReader

# (session, node, the node's last directory, the peers changed since) -> its directory.
ReadDirectory = Callable[[Session, str, DnsDirectory | None, frozenset[int] | None], DnsDirectory]


class NodeStates:
    """Each node's state, read by a desired-state reader of its own (so a change to a few
    peers is a delta read of those peers), with its resolver's directory."""

    def __init__(
        self,
        reader_for: Callable[[str], DesiredStateReader],
        directory: ReadDirectory | None,
    ) -> None:
        self.reader_for, self.directory = reader_for, directory
        self._readers: dict[str, tuple[DesiredStateReader, threading.Lock]] = {}
        self._lock = threading.Lock()
        # Each node's last directory: a change of a few peers re-reads those peers' rows.
        self._directories: dict[str, DnsDirectory] = {}

    def _reader(self, node: str) -> tuple[DesiredStateReader, threading.Lock]:
        with self._lock:
            found = self._readers.get(node)
            if found is None:
                found = self._readers[node] = (self.reader_for(node), threading.Lock())
            return found

    def note(self, node: str, revision: int, peers: frozenset[int]) -> None:
        self._reader(node)[0].note(revision, peers)

    def read(self, node: str) -> NodeState:
        """The node's state now (blocking: call it off the event loop)."""
        reader, lock = self._reader(node)
        # One read per node at a time (the second reuses the first's cache), and both parts
        # in one snapshot: a change committed between them would pair a state with the
        # resolver's directory of another revision.
        with lock, reader.pinned() as pin:
            pin.begin()
            desired = pin.read()
            dns = None
            if self.directory is not None:
                # Popped first: a read that fails leaves no directory a later delta
                # could be applied to out of step with the reader's cache.
                last = self._directories.pop(node, None)
                dns = self.directory(pin.db, node, last, reader.last_delta)
                self._directories[node] = dns
        return NodeState(desired, dns)

    def forget(self, node: str) -> None:
        with self._lock:
            self._readers.pop(node, None)
            self._directories.pop(node, None)


class FleetApplier:
    """Dispatches each change by its node: this host's own goes to the local applier (as
    in a single-node install); another node's is only committed (its revision is bumped
    in the change's transaction, and the commit wakes that node's agent sessions on every
    replica), so it never touches this kernel."""

    def __init__(
        self,
        local: Applier,
        node: str,
        node_of: Callable[[str], str | None],
        states: NodeStates,
        reported_quotas: Callable[[str], dict[str, int]],
    ) -> None:
        self.local, self.node = local, node
        self.node_of, self.states, self.reported_quotas = node_of, states, reported_quotas
        self._where: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def _is_local(self, interface: str) -> bool:
        with self._lock:
            if interface not in self._where:
                self._where[interface] = self.node_of(interface)
            node = self._where[interface]
        # Unknown (being made in this very change): the local node's, as services default.
        return node is None or node == self.node

    def _forget_interfaces(self) -> None:
        with self._lock:
            self._where.clear()

    def turn(self) -> AbstractContextManager[object]:
        return self.local.turn()

    def set_peer(self, interface: str, peer: PeerState) -> None:
        if self._is_local(interface):
            self.local.set_peer(interface, peer)

    def remove_peer(self, interface: str, public_key: str) -> None:
        if self._is_local(interface):
            self.local.remove_peer(interface, public_key)

    def set_policy(self, old: PeerPolicy | None, new: PeerPolicy | None, leaf: str) -> None:
        either = new or old
        if either is None or self._is_local(either.interface):
            self.local.set_policy(old, new, leaf)

    def set_forwards(self, interface: str, old: Sequence[Forward], new: Sequence[Forward]) -> None:
        if self._is_local(interface):
            self.local.set_forwards(interface, old, new)

    def remove_interface(self, name: str) -> None:
        local = self._is_local(name)
        self._forget_interfaces()
        if local:
            self.local.remove_interface(name)

    def apply(self, change: Change) -> None:
        self._route(change, self.local.apply)

    def changed(self, change: Change) -> None:
        self._route(change, self.local.changed)

    def _route(self, change: Change, to_local: Callable[[Change], None]) -> None:
        if INTERFACES in change.sections:
            self._forget_interfaces()
        if change.node == self.node:
            to_local(change)
        elif change.revision is not None and not change.full:
            self.states.note(change.node, change.revision, change.peers)

    def quotas(self, prefix: str) -> dict[str, Quota]:
        """This kernel's quotas, and those the other nodes' agents last reported."""
        try:
            found = dict(self.local.quotas(prefix))
        except ApplyFailed:
            found = {}
        for name, used in self.reported_quotas(prefix).items():
            found.setdefault(name, Quota(name, 0, used))
        return found

    def kernel_counts(self) -> KernelCounts:
        """This host's, live (agents send theirs to the metrics store in their reports)."""
        return self.local.kernel_counts()

    def host_footprint(self, ours: frozenset[str]) -> HostFootprint:
        return self.local.host_footprint(ours)

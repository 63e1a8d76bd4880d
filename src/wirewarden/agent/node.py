"""The fleet node's host: the reconciler's loop, the DNS resolver and the classifier, run
on the state the agent holds (bootstrap builds it with the real drivers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from wirewarden.dataplane.stats import DumpCache
from wirewarden.dns.runtime import DnsRuntime
from wirewarden.domain.classify.names import Seen
from wirewarden.domain.firewall import KernelCounts
from wirewarden.domain.state import DeviceDump
from wirewarden.fleet.protocol import PeerChanges
from wirewarden.reconciler.engine import Loop, Reconciler
from wirewarden.runtime.classifier import ClassifierControl


@dataclass
class NodeHost:
    """The agent's `Host` (agent/host.py)."""

    reconciler: Reconciler
    loop: Loop
    stats: DumpCache
    cpu: Callable[[], tuple[int, int]]
    dns: DnsRuntime | None = None
    classifier: ClassifierControl | None = None

    def start(self) -> None:
        if self.classifier is not None:
            self.classifier.armed = True
        # The first pass adopts what is running: a restarted agent drops no tunnel.
        self.loop.start()
        if self.dns is not None:
            self.dns.start()

    def stop(self) -> None:
        if self.dns is not None:
            self.dns.stop()
        self.loop.stop()
        if self.classifier is not None:
            self.classifier.close()

    def trigger(self) -> None:
        self.loop.trigger()

    def apply(self, changes: PeerChanges, leaf: str) -> None:
        reconciler = self.reconciler
        # A removed peer's rules go before its key, a new peer's key before its rules.
        for interface, _key, peer in changes.peers:
            if peer is not None:
                reconciler.apply_peer(interface, peer)
        for old, new in changes.policies:
            reconciler.apply_policy(old, new, leaf)
        for interface, key, peer in changes.peers:
            if peer is None:
                reconciler.remove_peer(interface, key)
        if changes.forwards is not None:  # a published port came or went
            reconciler.apply_forwards(*changes.forwards)

    def dumps(self) -> tuple[dict[str, DeviceDump], float]:
        return self.stats.timed()

    def wait_dump(self, after: float, timeout: float) -> bool:
        return self.stats.wait_fresh(after, timeout)

    def cpu_times(self) -> tuple[int, int]:
        return self.cpu()

    def kernel_counts(self) -> KernelCounts:
        return self.reconciler.observe_kernel_counts()

    def names(self) -> dict[Seen, int]:
        return self.classifier.drain_names() if self.classifier is not None else {}

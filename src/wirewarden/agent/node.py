"""The fleet node's host: the reconciler's loop, the DNS resolver and the classifier, run
on the state the agent holds (bootstrap builds it with the real drivers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from wirewarden.dns.runtime import DnsRuntime
from wirewarden.domain.state import DeviceDump
from wirewarden.reconciler.engine import Loop
from wirewarden.runtime.classifier import ClassifierControl


@dataclass
class NodeHost:
    """The agent's `Host` (agent/host.py)."""

    loop: Loop
    stats: Callable[[], dict[str, DeviceDump]]
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

    def dumps(self) -> dict[str, DeviceDump]:
        return self.stats()

    def cpu_times(self) -> tuple[int, int]:
        return self.cpu()

"""What the agent drives on its host, as the agent sees it (declared here, its consumer;
built in bootstrap with the real drivers, or a test's fake data plane)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from wirewarden.domain.classify.names import Seen
from wirewarden.domain.firewall import KernelCounts
from wirewarden.domain.state import DeviceDump
from wirewarden.fleet.protocol import PeerChanges


@dataclass(frozen=True)
class Pass:
    """What a reconcile pass left: the revision it converged to, and its failure if any."""

    revision: int
    in_sync: bool
    error: str | None


class Host(Protocol):
    def start(self) -> None:
        """Start the reconciler's loop, the resolver and the classifier."""
        ...

    def stop(self) -> None: ...

    def trigger(self) -> None:
        """Reconcile now (a new state is held)."""
        ...

    def apply(self, changes: PeerChanges, leaf: str) -> None:
        """Apply these peers' changes alone, as `serve` does for one peer (blocking);
        raises when the kernel refused one (then reconcile the whole state)."""
        ...

    def dumps(self) -> tuple[dict[str, DeviceDump], float]:
        """The devices' peers and counters, a second or two old at most, and the
        wall-clock time they were read (blocking)."""
        ...

    def wait_dump(self, after: float, timeout: float) -> bool:
        """Whether a dump read after wall-clock `after` is at hand, waiting up to `timeout`
        seconds for a reconcile pass to read one (blocking)."""
        ...

    def cpu_times(self) -> tuple[int, int]:
        """The host's (busy, total) CPU ticks so far (blocking)."""
        ...

    def kernel_counts(self) -> KernelCounts:
        """The firewall's own counters (classified traffic) now (blocking); raises when
        they cannot be read (no table yet)."""
        ...

    def names(self) -> dict[Seen, int]:
        """The server names classified flows carried since the last call (none unless
        WIREWARDEN_CLASSIFY_NAMES)."""
        ...


# Told after each reconcile pass (from the reconciler's thread).
PassSink = Callable[[Pass], None]

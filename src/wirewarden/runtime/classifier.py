"""Classification follows the desired state: after each reconcile pass the queue rules
cover the node's interfaces and the queue reader runs while some peer blocks a class
(`WIREWARDEN_CLASSIFY=auto`), always (`on`) or never (`off`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, Protocol

from wirewarden.domain.classify.names import Seen
from wirewarden.domain.classify.steering import Steering
from wirewarden.domain.state import DesiredState

log = logging.getLogger(__name__)
Mode = Literal["auto", "on", "off"]


class Child(Protocol):
    def start(self, ready_timeout: float) -> bool: ...
    def stop(self, timeout: float = 5.0) -> None: ...


class Names(Protocol):
    """Where the reader tells server names (dataplane/namesink.py)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def drain(self) -> dict[Seen, int]: ...


class ClassifierControl:
    """Called with each pass's desired state; starts, re-steers and stops as it needs."""

    def __init__(
        self,
        mode: Mode,
        queue: int,
        reader: Child,
        steer: Callable[[Steering], None],
        unsteer: Callable[[], None],
        names: Names | None = None,
    ) -> None:
        self.mode, self.queue, self.reader = mode, queue, reader
        # WIREWARDEN_CLASSIFY_NAMES: the names the reader tells are kept (None: not).
        self.names = names
        self._steer, self._unsteer = steer, unsteer
        self._steered: tuple[str, ...] | None = None
        self._running = False
        # Only the process that runs the reconcile loop (serve) runs the reader: a CLI
        # command's one-off pass must not leave a child or a rule behind.
        self.armed = False

    def needed(self, desired: DesiredState) -> bool:
        if self.mode != "auto":
            return self.mode == "on"
        # Keeping names is asking for them: classification runs for it.
        return self.names is not None or any(peer.block_apps for peer in desired.policy.peers)

    def drain_names(self) -> dict[Seen, int]:
        """The flows per server name told since the last call (the collector's)."""
        return self.names.drain() if self.names is not None and self._running else {}

    def __call__(self, desired: DesiredState) -> None:
        if not self.armed:
            return
        if not self.needed(desired):
            self._stop()
            return
        if not self._running:
            if self.names is not None:
                self.names.start()  # before the reader, which tells it from its first flow
            # The reader binds the queue before the rule sends it anything; until then
            # (and whenever it is down) the rule's bypass lets packets through.
            self.reader.start(ready_timeout=0)
            self._running = True
        interfaces = tuple(sorted(desired.interfaces))
        if interfaces != self._steered:
            self._steer(Steering(self.queue, interfaces))
            self._steered = interfaces
            log.info("classifying the traffic of %s", ", ".join(interfaces) or "no interface")

    def close(self) -> None:
        self.armed = False
        self._stop()

    def _stop(self) -> None:
        if self._steered is not None:
            self._unsteer()
            self._steered = None
        if self._running:
            self.reader.stop()
            if self.names is not None:
                self.names.stop()
            self._running = False

"""A short-lived cache of `wg show all dump`, so pages and lists cost one dump per interval."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from wirewarden.domain.state import DeviceDump

log = logging.getLogger(__name__)
# How long before a periodic reader of dumps (the traffic collector, an agent's report and
# heartbeat) is due it starts waiting for the reconcile pass's dump.
ALIGN_SLACK = 1.0


def align_window(period: float) -> tuple[float, float]:
    """(early, late): a reader due every `period` seconds, beside reconcile passes that
    offer the dump they took (DumpCache.offer) as often, waits for the next one from
    `early` seconds before it is due until `late` seconds after, and only then takes its
    own: each dump asks every wireguard-go for all its peers."""
    return min(ALIGN_SLACK, period / 4), period / 2


class DumpCache:
    """Fresh for `max_age` seconds; then, for `stale_for` more, the old value is served while
    one background thread fetches the next, so no request waits for a dump of 10k peers."""

    def __init__(
        self,
        dump: Callable[[], dict[str, DeviceDump]],
        max_age: float,
        stale_for: float = 30.0,
    ) -> None:
        self.dump, self.max_age, self.stale_for = dump, max_age, stale_for
        self._at = 0.0
        # Wall-clock time of the dump now held, so a reader can tell a new dump from a reused one.
        self.taken = 0.0
        self._value: dict[str, DeviceDump] = {}
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)  # notified on every dump held
        self._refreshing = False

    def __call__(self) -> dict[str, DeviceDump]:
        with self._lock:
            age = time.monotonic() - self._at
            if age <= self.max_age:
                return self._value
            if self._at and self.max_age > 0 and age <= self.max_age + self.stale_for:
                self._refresh_in_background()
                return self._value
            self._store(self.dump())
            return self._value

    def timed(self) -> tuple[dict[str, DeviceDump], float]:
        """A dump no older than `max_age` (taken now, inline, if the held one is older) and
        the wall-clock time it was taken. The traffic collector calls this every period, so
        the dump it takes also serves the pages."""
        with self._lock:
            if time.monotonic() - self._at > self.max_age:
                self._store(self.dump())
            return self._value, self.taken

    def offer(self, value: dict[str, DeviceDump], at: float, taken: float) -> None:
        """A dump someone else took (the reconcile pass, at monotonic `at`, wall-clock
        `taken`): held if it is newer than ours, so the collector and pages need not ask
        200 wireguard-go for another one of 10,000 peers."""
        with self._lock:
            if at > self._at:
                self._hold(value, at, taken)

    def wait_fresh(self, after: float, timeout: float) -> bool:
        """Whether a dump taken after wall-clock `after` and fresh enough to be served is
        held, waiting up to `timeout` seconds for one to be offered or taken."""

        def fresh() -> bool:
            return self.taken > after and time.monotonic() - self._at <= self.max_age

        with self._new:
            return self._new.wait_for(fresh, timeout)

    def _store(self, value: dict[str, DeviceDump]) -> None:
        """A dump just taken here."""
        self._hold(value, time.monotonic(), time.time())

    def _hold(self, value: dict[str, DeviceDump], at: float, taken: float) -> None:
        self._value, self._at, self.taken = value, at, taken
        self._new.notify_all()

    def _refresh_in_background(self) -> None:
        if not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._refresh, name="wg-dump", daemon=True).start()

    def _refresh(self) -> None:
        try:
            value = self.dump()
        except Exception:  # the next caller past the stale bound retries inline and sees it
            log.warning("background wg dump failed", exc_info=True)
            value = None
        with self._lock:
            if value is not None:
                self._store(value)
            self._refreshing = False

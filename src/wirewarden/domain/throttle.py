"""Counting failed attempts per key (account name, source address) and locking keys out.

Pure: the caller passes the clock. Keys are counted the same whether they name an
existing account or not, so a lockout never tells whether a user exists.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SWEEP_ABOVE = 10_000  # keys kept before stale ones are dropped (bounds memory under spraying)


@dataclass
class Throttle:
    max_failures: int
    window: float  # seconds in which failures count
    lockout: float  # seconds a key stays locked once it reaches max_failures
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def locked_for(self, key: str, now: float) -> float:
        """Seconds the key stays locked (0 when it is not)."""
        until = self._locked_until.get(key, 0.0)
        if until <= now:
            self._locked_until.pop(key, None)
            return 0.0
        return until - now

    def fail(self, key: str, now: float) -> bool:
        """Count a failure; True when it locked the key."""
        times = self._failures.setdefault(key, deque())
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(self._failures) > SWEEP_ABOVE:
            self._sweep(now)
        if len(times) >= self.max_failures:
            self._locked_until[key] = now + self.lockout
            self._failures.pop(key, None)
            return True
        return False

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)
        self._locked_until.pop(key, None)

    def _sweep(self, now: float) -> None:
        stale = [k for k, t in self._failures.items() if not t or t[-1] <= now - self.window]
        for key in stale:
            del self._failures[key]
        for key in [k for k, until in self._locked_until.items() if until <= now]:
            del self._locked_until[key]

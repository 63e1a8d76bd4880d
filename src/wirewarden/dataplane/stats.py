"""A short-lived cache of `wg show all dump`, so pages and lists cost one dump per interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from wirewarden.domain.state import DeviceDump


class DumpCache:
    def __init__(self, dump: Callable[[], dict[str, DeviceDump]], max_age: float) -> None:
        self.dump, self.max_age = dump, max_age
        self._at = 0.0
        self._value: dict[str, DeviceDump] = {}
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, DeviceDump]:
        with self._lock:
            if time.monotonic() - self._at > self.max_age:
                self._value = self.dump()
                self._at = time.monotonic()
            return self._value

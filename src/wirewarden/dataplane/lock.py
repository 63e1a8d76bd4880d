"""A lock held by one writer to this host's data plane across threads and processes.

Lock order (every code path, in serve, the CLI and the agent):

1. this host lock, then
2. the database's write lock (SQLite's, taken by a transaction's first write; on
   PostgreSQL the row locks of the rows it writes).

Never the other way round: code that will need the host lock takes it before its first
write, and never waits for it inside a write transaction (a read-only snapshot, such as
the reconciler's pinned read, may be open: it blocks no writer). A writer holding the
database while waiting for this lock deadlocks with one holding this lock and waiting for
the database, until the database's busy timeout fails one of them. Passes that only write
the database (the reconciler's report sinks, the traffic collector, DNS policy changes,
sessions and tokens) take no host lock at all."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path


class HostLock:
    """Re-entrant within a process (threading.RLock) and exclusive across processes (flock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> HostLock:
        self._thread_lock.acquire()
        if self._depth == 0:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._thread_lock.release()

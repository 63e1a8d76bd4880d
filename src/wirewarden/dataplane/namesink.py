"""Where the queue reader tells the server names of classified flows (nfqueue.py
`--names`): a Unix datagram socket in the data directory (0600, root's), read by one
thread that counts flows per (address, address, class, name) until the collector
drains them each period.

The counts are bounded (MAX_KEYS between drains): a peer opening flows to a million
random names costs a bounded amount of memory, and the names beyond are dropped (and
counted as such)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections import Counter
from pathlib import Path

from wirewarden.domain.classify.names import Seen, decode

log = logging.getLogger(__name__)
MAX_KEYS = 50_000
MAX_DATAGRAM = 1024


class NameSink:
    def __init__(self, path: Path, max_keys: int = MAX_KEYS) -> None:
        self.path, self.max_keys = path, max_keys
        self._counts: Counter[Seen] = Counter()
        self._lock = threading.Lock()
        self.dropped = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        old = os.umask(0o177)  # 0600 from the start: no moment another user could send
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="classify-names", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            # A datagram to itself wakes the blocked read, which then sees the socket gone.
            with contextlib.suppress(OSError):
                sock.sendto(b"", str(self.path))
            if self._thread is not None:
                self._thread.join(5)
            sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _run(self) -> None:
        while (sock := self._sock) is not None:
            try:
                data = sock.recv(MAX_DATAGRAM)
            except OSError:
                return
            seen = decode(data) if data else None
            if seen is not None:
                self.add(seen)

    def add(self, seen: Seen) -> None:
        with self._lock:
            if seen in self._counts or len(self._counts) < self.max_keys:
                self._counts[seen] += 1
            else:
                self.dropped += 1

    def drain(self) -> dict[Seen, int]:
        """The flows counted since the last drain."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return dict(counts)

"""A child process `serve` keeps running: started again with backoff when it exits, its
output logged line by line, and stopped (terminate, wait, kill) when serve stops.

One thread per child waits on it (and one more reads its output), so nothing polls.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from wirewarden.dataplane.run import CommandError, spawn_child

log = logging.getLogger(__name__)

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
# A child that ran this long before it exited starts again after FIRST_DELAY: a crash
# now and then is not a crash loop.
STEADY_SECONDS = 60.0
READY_POLL = 0.05


class Supervised:
    """Runs argv until stop(); `ready` is a quick probe telling the child serves."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        ready: Callable[[], bool],
        *,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        logger: logging.Logger | None = None,
    ) -> None:
        self.name, self.argv, self.ready = name, list(argv), ready
        self.first_delay, self.max_delay = first_delay, max_delay
        self.log = logger or log
        self.starts = 0
        self.tail: deque[str] = deque(maxlen=20)  # its last output lines, for errors
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._answering = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self, ready_timeout: float) -> bool:
        """Start the child and wait until it is ready; False when it was not in time (it
        goes on being started and restarted in the background)."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self._answering.wait(ready_timeout)

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stopping.set()
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.log.warning("%s did not stop on SIGTERM in %g s: killed", self.name, timeout)
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout + 5)

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        quick_exits = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            status = self._run_once()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STEADY_SECONDS:
                quick_exits = 0
            delay = min(self.max_delay, self.first_delay * 2**quick_exits)
            quick_exits += 1
            last = self.tail[-1] if self.tail else "no output"
            self.log.warning(
                "%s %s; starting it again in %g s (last output: %s)",
                self.name,
                status,
                delay,
                last,
            )
            self._stopping.wait(delay)

    def _run_once(self) -> str:
        """Start the child, wait for it to end; what happened, for the log."""
        with self._lock:
            if self._stopping.is_set():
                return "stopped"
            try:
                proc = self._proc = spawn_child(self.argv)
            except CommandError as exc:
                return f"could not start: {exc}"
            self.starts += 1
        reader = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        reader.start()
        self._wait_ready(proc)
        status = proc.wait()
        reader.join(timeout=2)
        return f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        while proc.poll() is None and not self._stopping.is_set():
            try:
                if self.ready():
                    self._answering.set()
                    return
            except OSError:
                pass
            time.sleep(READY_POLL)

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    self.tail.append(line)
                    self.log.log(_level(line), "%s: %s", self.name, line)


def _level(line: str) -> int:
    """The level of a daemon's log line by its own tag (unbound: `... error: ...`)."""
    lowered = line.lower()
    if "error:" in lowered or "fatal" in lowered:
        return logging.ERROR
    if "warning:" in lowered:
        return logging.WARNING
    return logging.INFO

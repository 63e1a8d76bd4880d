"""Writing the query log, away from the resolver's event loop.

Measured (docs/benchmarks.md, dns_bench): any Python work in another thread of the
resolver's process stalls the loop far beyond its own length. The loop gives up the
GIL at every `recvfrom`/`sendto` and then waits for up to the switch interval to get
it back, several times per burst; 20 ms of a thread turning counts into rows became
40-60 ms of loop lag at 5,000 queries a second, and the p99 with it.

So `serve` writes the log in a child process (`ProcessLogWriter`): the loop hands it
the sealed counts as marshalled frames through a pipe, a few hundred keys at a time
with a turn of the loop between them, and the child makes the rows, writes them and
prunes. Nothing of it runs in the resolver's process. `ThreadLogWriter` is the
in-process fallback (an in-memory database, unit tests, a child that cannot start).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import marshal
import multiprocessing
import os
import signal
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import IO, Any, Protocol

from wirewarden.dns.resolver import LogBatch, LogKey, Record, counted_records

log = logging.getLogger(__name__)

WriteLog = Callable[[list[Record]], None]
PruneLog = Callable[[float, int], int]
# Builds the log's ports in the child; must pickle (a module-level function, or a
# functools.partial of one), since the child is spawned, not forked.
LogPortsFactory = Callable[[], tuple[WriteLog, PruneLog]]

SLICE = 500  # records per write in the thread writer
CHUNK = 256  # counted keys per frame: marshalling them takes a fraction of a millisecond
MAX_BUFFERED = 64 * 1024 * 1024  # bytes waiting for a slow child before batches are dropped
_FRAME = struct.Struct("!I")


class LogWriter(Protocol):
    async def start(self) -> None: ...

    async def submit(self, batch: LogBatch) -> int:
        """Hand over a batch; returns how many records were dropped instead."""

    async def prune(self, before: float, max_rows: int) -> None: ...

    async def close(self) -> None: ...


def sorted_records(batch: LogBatch) -> list[Record]:
    """Sorted by time, so row ids follow time (the log is read newest id first)."""
    records = batch.records()
    records.sort(key=_first)
    return records


def _first(record: Record) -> float:
    return record[0]


class ThreadLogWriter:
    """Writes in the default executor, in slices that yield the GIL between them."""

    def __init__(self, write_log: WriteLog, prune_log: PruneLog) -> None:
        self.write_log, self.prune_log = write_log, prune_log

    async def start(self) -> None:
        return None

    async def submit(self, batch: LogBatch) -> int:
        await asyncio.get_running_loop().run_in_executor(None, self._write, batch)
        return 0

    def _write(self, batch: LogBatch) -> None:
        records = sorted_records(batch)
        for start in range(0, len(records), SLICE):
            self.write_log(records[start : start + SLICE])
            time.sleep(0)

    async def prune(self, before: float, max_rows: int) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.prune_log, before, max_rows)

    async def close(self) -> None:
        return None


# ------------------------------------------------------------------ the child process


def frames(batch: LogBatch) -> Iterator[bytes]:
    """The batch as frames: slow-path records, then the counted keys a chunk at a time,
    then an end mark. Each is small, so marshalling one is a short step of the loop."""
    for start in range(0, len(batch.pending), CHUNK):
        yield _frame(("records", batch.pending[start : start + CHUNK]))
    for counts, firsts in batch.windows:
        items = iter(counts.items())
        while chunk := list(itertools.islice(items, CHUNK)):
            yield _frame(("counts", [(key, count, firsts[key]) for key, count in chunk]))
    yield _frame(("end",))


def _frame(message: tuple[Any, ...]) -> bytes:
    payload = marshal.dumps(message)
    return _FRAME.pack(len(payload)) + payload


def read_frames(stream: IO[bytes]) -> Iterator[tuple[Any, ...]]:
    """Messages until the writer's end of the pipe closes."""
    while header := stream.read(_FRAME.size):
        if len(header) < _FRAME.size:
            return
        (size,) = _FRAME.unpack(header)
        payload = stream.read(size)
        if len(payload) < size:
            return
        # Only the resolver (our parent) holds the other end of this pipe.
        message: tuple[Any, ...] = marshal.loads(payload)  # noqa: S302
        yield message


def child_main(reader: Connection, factory: LogPortsFactory) -> None:
    """The writer process: rows from the frames, written once a batch is complete."""
    # Ctrl-C on `serve` reaches the whole process group; this process ends when the
    # resolver closes the pipe, after writing what it was sent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    _step_aside()
    write_log, prune_log = factory()
    fd = os.dup(reader.fileno())
    reader.close()
    records: list[Record] = []
    counted: list[tuple[LogKey, int, tuple[float, int | None, str | None]]] = []
    with open(fd, "rb") as stream:
        for message in read_frames(stream):
            kind = message[0]
            if kind == "records":
                records += message[1]
            elif kind == "counts":
                counted += message[1]
            elif kind == "end":
                _write(write_log, records, counted)
                records, counted = [], []
            elif kind == "prune":
                _guarded(prune_log, message[1], message[2])
    if records or counted:
        _write(write_log, records, counted)


def _step_aside() -> None:
    """Run below the resolver: writing the log may lag, answering may not. A spawned
    child inherits its parent's scheduling, including a real-time policy (`chrt`), under
    which a second of writing would take a core from the resolver outright."""
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    with contextlib.suppress(OSError):
        os.nice(10)


def _write(
    write_log: WriteLog,
    records: list[Record],
    counted: Iterable[tuple[LogKey, int, tuple[float, int | None, str | None]]],
) -> None:
    rows = records + counted_records(counted)
    rows.sort(key=_first)
    _guarded(write_log, rows)


def _guarded(job: Callable[..., object], *args: Any) -> None:
    try:
        job(*args)
    except Exception:  # a failed write costs those rows, never the writer
        log.exception("DNS query log: writing failed")


class _Pipe(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


class ProcessLogWriter:
    """A child process that writes the log; restarted when it dies (its rows lost)."""

    def __init__(self, factory: LogPortsFactory) -> None:
        self.factory = factory
        self.process: multiprocessing.process.BaseProcess | None = None
        self.transport: asyncio.WriteTransport | None = None
        self.pipe: _Pipe | None = None

    async def _connect(self) -> asyncio.WriteTransport:
        if self.transport is not None and self.pipe is not None and not self.pipe.lost.done():
            return self.transport
        if self.process is not None:
            code = self.process.exitcode
            log.warning("DNS query log writer stopped (exit %s); starting a new one", code)
            await self._reap()
        loop = asyncio.get_running_loop()
        # Spawned (a fresh interpreter), not forked: this process runs threads.
        context = multiprocessing.get_context("spawn")
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(
            target=child_main, args=(reader, self.factory), name="wirewarden-dns-log", daemon=True
        )
        try:
            await loop.run_in_executor(None, process.start)  # pickles, forks and execs
        finally:
            reader.close()
        fd = os.dup(writer.fileno())
        writer.close()
        os.set_blocking(fd, False)
        pipe = open(fd, "wb", buffering=0)  # noqa: SIM115 (the transport owns and closes it)
        transport, protocol = await loop.connect_write_pipe(_Pipe, pipe)
        self.process, self.transport, self.pipe = process, transport, protocol
        return transport

    async def start(self) -> None:
        await self._connect()

    async def submit(self, batch: LogBatch) -> int:
        transport = await self._connect()
        if transport.get_write_buffer_size() > MAX_BUFFERED:
            return len(batch.pending) + sum(len(counts) for counts, _ in batch.windows)
        for frame in frames(batch):
            transport.write(frame)
            await asyncio.sleep(0)  # answer what came in meanwhile
        return 0

    async def prune(self, before: float, max_rows: int) -> None:
        transport = await self._connect()
        transport.write(_frame(("prune", before, max_rows)))

    async def close(self) -> None:
        """Let the child write what it was sent, then end it."""
        if self.transport is not None and self.pipe is not None:
            self.transport.close()  # after the buffer drains; the child then reads EOF
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.pipe.lost), 30)
        self.transport = self.pipe = None
        await self._reap()

    async def _reap(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, process.join, 30)
        if process.is_alive():
            process.terminate()
            await loop.run_in_executor(None, process.join, 5)

"""The DNS resolver inside `serve`: its own thread and uvloop event loop.

Keeps the listeners, policies and compiled blocklists equal to the directory read
from the database (checked every second by revision), refreshes blocklists on a
schedule, and hands the query log to a writer. A reload compiles in a worker
thread and swaps the routing whole: a query sees the old policy or the new one,
never half of one, and none waits for the compile.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from wirewarden.dns.cache import AnswerCache, CacheLimits
from wirewarden.dns.lists import ListStatus, ListStore
from wirewarden.dns.logwriter import (
    LogPortsFactory,
    LogWriter,
    ProcessLogWriter,
    PruneLog,
    ThreadLogWriter,
    WriteLog,
)
from wirewarden.dns.resolver import PolicyRuntime, QueryLog, Resolver, Routing
from wirewarden.dns.server import Listeners
from wirewarden.dns.upstream import UpstreamSet
from wirewarden.domain.dnsrules import CompiledList, compile_policy
from wirewarden.domain.dnsstate import DEFAULT_POLICY, DnsDirectory

log = logging.getLogger(__name__)

SYNC_SECONDS = 1.0
READ_SHARE = 0.05  # at most this share of the time goes to re-reading the directory
PRUNE_SECONDS = 60.0
SWITCH_INTERVAL = 0.0005
YOUNG_GC_SECONDS = 0.02  # a young collection at least this often
MIDDLE_GC_EVERY = 10  # and the middle generation every this many of them (0.2 s)


@dataclass
class DnsConfig:
    port: int = 53
    extra_listen: tuple[str, ...] = ()  # besides the gateways (e.g. 127.0.0.1 for a bench)
    allow_any_source: bool = False
    refresh_seconds: float = 86_400.0
    retention_seconds: float = 7 * 86_400.0
    max_log_rows: int = 1_000_000
    # How often the query log is written; identical cache hits and blocks within one
    # such window share a row (with a count). Pi-hole writes once a minute.
    log_window: float = 5.0
    cache: CacheLimits = field(default_factory=CacheLimits)


@dataclass
class Ports:
    """What the runtime needs from the database, as plain callables (wired in bootstrap)."""

    revision: Callable[[], int]
    directory: Callable[[], DnsDirectory]
    write_log: WriteLog
    prune_log: PruneLog
    # The same two in a child process (logwriter.py: why); None writes in a thread.
    log_process: LogPortsFactory | None = None


class Helper(Protocol):
    """A process the resolver relies on (the local Unbound): started before it, stopped
    after it."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class DnsRuntime:
    def __init__(
        self,
        config: DnsConfig,
        upstreams: UpstreamSet,
        lists: ListStore,
        ports: Ports,
        helpers: Sequence[Helper] = (),
    ) -> None:
        self.config, self.lists, self.ports = config, lists, ports
        self.helpers = tuple(helpers)
        self.log = QueryLog()
        self.cache = AnswerCache(config.cache)
        self.resolver = Resolver(upstreams, self.cache, self.log)
        self.writer: LogWriter = (
            ProcessLogWriter(ports.log_process)
            if ports.log_process is not None
            else ThreadLogWriter(ports.write_log, ports.prune_log)
        )
        self.compiled: dict[str, tuple[tuple[int, int], CompiledList]] = {}
        self.directory: DnsDirectory | None = None
        self.loaded_at = 0.0
        self._next_read = 0.0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._reload = threading.Event()
        self._list_lock = threading.Lock()

    # --------------------------------------------------------------- control

    def start(self) -> None:
        for helper in self.helpers:
            helper.start()
        self._thread = threading.Thread(target=self._run, name="dns", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=15)
        for helper in reversed(self.helpers):
            helper.stop()

    def reload_lists(self) -> None:
        """Recompile lists whose copies changed (after a refresh from the API or CLI)."""
        self._reload.set()

    def _run(self) -> None:
        import uvloop

        # A thread running Python (the log writer here, the web app and reconciler in
        # `serve`) keeps the GIL for up to the switch interval each time the resolver's
        # thread gives it up for a system call: at the default 5 ms, a burst of answers
        # waited 10-50 ms behind the log writer (dns_bench). 0.5 ms bounds that wait.
        sys.setswitchinterval(SWITCH_INTERVAL)

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        listeners = Listeners(self.resolver, self.config.port)
        try:
            await self._sync(listeners, force=True)
        except Exception:
            log.exception("DNS: first load failed")
        # What exists now (modules, the app, compiled lists) lives as long as the process:
        # out of the collector's sight, a full collection scans only what came since. Full
        # collections over the whole heap stalled every query for 30-90 ms (dns_bench).
        gc.freeze()
        young = _YoungCollections(self._loop)
        self._ready.set()
        first_refresh = asyncio.create_task(self._refresh_due())  # lists without a copy yet
        tasks = [
            first_refresh,
            # The writer process starts now, so the first window's rows need not wait
            # for an interpreter to start and import what it writes with.
            asyncio.create_task(self._to_writer(lambda: self.writer.start())),
            asyncio.create_task(self._every(SYNC_SECONDS, lambda: self._sync(listeners))),
            asyncio.create_task(self._every(self.config.log_window, self._flush)),
            asyncio.create_task(self._every(PRUNE_SECONDS, self._prune)),
            asyncio.create_task(self._every(60.0, self._refresh_due)),
        ]
        await self._stop.wait()
        young.stop()
        for task in tasks:
            task.cancel()
        await listeners.close()
        with contextlib.suppress(Exception):
            await self._flush()
        with contextlib.suppress(Exception):
            await self.writer.close()
        with contextlib.suppress(Exception):
            await self.resolver.upstreams.close()

    async def _every(self, seconds: float, job: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                result = job()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("DNS: periodic job failed")

    # ------------------------------------------------------------- syncing

    async def _sync(self, listeners: Listeners, force: bool = False) -> None:
        loop = asyncio.get_running_loop()
        revision = await loop.run_in_executor(None, self.ports.revision)
        changed = self.directory is None or revision != self.directory.revision
        due = changed and time.monotonic() >= self._next_read
        if force or due or self._reload.is_set():
            self._reload.clear()
            started = time.monotonic()
            directory = await loop.run_in_executor(None, self.ports.directory)
            routing = await loop.run_in_executor(None, self._compile, directory)
            # Reading 10,000 peers takes a tenth of a second of the one interpreter; while a
            # script adds peers one by one, a read every second would slow each API call.
            # Until the next read a new peer gets the default policy (policy and list changes
            # come through reload_lists at once).
            spent = time.monotonic() - started
            self._next_read = time.monotonic() + spent * (1 / READ_SHARE - 1)
            self.log.seal()  # counts so far belong to the old routing's peers and policies
            self.resolver.routing = routing
            if self.directory is None or self._lists_changed(directory):
                self.cache.clear()
            self.directory = directory
            self.loaded_at = time.time()
        wanted = set(self.directory.listen if self.directory else ()) | set(
            self.config.extra_listen
        )
        await listeners.update(wanted)

    def _lists_changed(self, directory: DnsDirectory) -> bool:
        return self.directory is not None and self.directory.blocklists() != directory.blocklists()

    def _compile(self, directory: DnsDirectory) -> Routing:
        """Compile what changed (lists by their copy's signature) into a new Routing."""
        self._load_lists(directory.blocklists())
        policies = {}
        for name, spec in directory.policies.items():
            lists = [self.compiled[s][1] for s in spec.blocklists if s in self.compiled]
            compiled = compile_policy(
                name, spec.deny, spec.allow, spec.block_answer, spec.anti_bypass, lists
            )
            policies[name] = PolicyRuntime(compiled)
        if DEFAULT_POLICY not in policies:
            policies[DEFAULT_POLICY] = PolicyRuntime(
                compile_policy(DEFAULT_POLICY, (), (), "nxdomain", True)
            )
        networks = tuple(ipaddress.ip_network(n, strict=False) for n in directory.networks)
        return Routing(dict(directory.clients), policies, networks, self.config.allow_any_source)

    def _load_lists(self, sources: Iterable[str]) -> None:
        with self._list_lock:
            wanted = set(sources)
            for source in list(self.compiled):
                if source not in wanted:
                    del self.compiled[source]
            for source in sorted(wanted):
                signature = self.lists.copy_signature(source)
                if signature is None:
                    continue
                have = self.compiled.get(source)
                if have is not None and have[0] == signature:
                    continue
                started = time.monotonic()
                compiled = self.lists.load(source)
                if compiled is not None:
                    self.compiled[source] = (signature, compiled)
                    log.info(
                        "DNS: loaded %s (%d entries) in %.2f s",
                        source,
                        len(compiled.deny),
                        time.monotonic() - started,
                    )

    # ------------------------------------------------------------- lists

    async def _refresh_due(self) -> None:
        """Fetch lists with no copy yet, or older than the refresh period."""
        if self.directory is None:
            return
        loop = asyncio.get_running_loop()
        due = [s for s in sorted(self.directory.blocklists()) if self._due(s)]
        if due:
            await loop.run_in_executor(None, self.refresh, due)
            self._reload.set()

    def _due(self, source: str) -> bool:
        status = self.lists.status(source)
        if not status.has_copy and status.checked_at is None:
            return True
        stamp = status.checked_at or status.fetched_at
        if stamp is None:
            return True
        from datetime import datetime

        age = time.time() - datetime.fromisoformat(stamp).timestamp()
        retry = 300.0 if status.error else self.config.refresh_seconds
        return age >= retry

    def refresh(self, sources: Iterable[str]) -> list[ListStatus]:
        return [self.lists.fetch(source) for source in sources]

    # ------------------------------------------------------------- query log

    async def _flush(self) -> None:
        batch = self.log.take()
        if batch:
            self.log.dropped += await self._to_writer(lambda: self.writer.submit(batch)) or 0

    async def _prune(self) -> None:
        cutoff = time.time() - self.config.retention_seconds
        await self._to_writer(lambda: self.writer.prune(cutoff, self.config.max_log_rows))

    async def _to_writer(self, job: Callable[[], Awaitable[int | None]]) -> int | None:
        """Run a job on the writer; when the writer process cannot be started, go on
        writing in a thread (slower answers under load beat a lost log)."""
        try:
            return await job()
        except Exception:
            if isinstance(self.writer, ThreadLogWriter):
                raise
            log.exception("DNS: no query log writer process; writing in a thread instead")
            self.writer = ThreadLogWriter(self.ports.write_log, self.ports.prune_log)
            return await job()

    # ------------------------------------------------------------- status

    def status(self) -> dict[str, object]:
        return {
            "listening": sorted(self.directory.listen) if self.directory else [],
            "upstreams": self.resolver.upstreams.status(),
            "cache_entries": len(self.cache),
            "cache_hits": self.cache.hits,
            "cache_misses": self.cache.misses,
            "log_dropped": self.log.dropped,
            "lists_loaded": {s: len(c.deny) for s, (_, c) in self.compiled.items()},
        }


class _YoungCollections:
    """Collects the youngest generation every 20 ms instead of at its allocation count.

    The fast path replaces objects (packet-cache entries, their keys) rather than adding
    them: each new one is counted, each old one freed is counted off, so the count stays
    under its threshold while the young list grows to tens of thousands. The collection
    that finally came scanned them all at once: 15-25 ms of CPU with every query waiting
    (dns_bench, `--probe`). Collected every 20 ms, a young list is a few hundred objects;
    the cache's tuples of plain values are untracked at their first collection and are
    never scanned again, so little survives to the older generations.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.rounds = loop, 0
        self.timer = loop.call_later(YOUNG_GC_SECONDS, self._collect)

    def _collect(self) -> None:
        self.rounds += 1
        gc.collect(1 if self.rounds % MIDDLE_GC_EVERY == 0 else 0)
        self.timer = self.loop.call_later(YOUNG_GC_SECONDS, self._collect)

    def stop(self) -> None:
        self.timer.cancel()

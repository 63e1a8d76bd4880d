"""The answer cache: upstream responses kept as bytes with their TTL positions.

A hit is the stored bytes with the id, flags, question spelling and remaining
TTLs patched in (dnswire.patch_cached). Negative answers (NXDOMAIN, NODATA) are
kept for the SOA's negative TTL. An expired entry may still be served, as
"stale", for a bounded time when no upstream answers (RFC 8767).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from wirewarden.domain import dnswire

Key = tuple[bytes, bool, bool]


class Entry(NamedTuple):
    """A tuple of plain values, so the garbage collector stops tracking it: a cache of
    100k entries as objects made every full collection a pause of tens of ms."""

    wire: bytes
    ttls: tuple[tuple[int, int], ...]
    stored: float
    expires: float


@dataclass
class CacheLimits:
    max_entries: int = 100_000
    max_ttl: int = 86_400
    negative_ttl: int = 300  # cap for NXDOMAIN/NODATA, and the default without an SOA
    stale_seconds: int = 3_600  # how long past expiry an answer may still serve
    stale_ttl: int = 30  # the TTL a stale answer goes out with


class AnswerCache:
    def __init__(
        self, limits: CacheLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or CacheLimits()
        self.clock = clock
        self.entries: dict[Key, Entry] = {}
        self.hits = self.misses = 0

    def get(self, key: Key) -> Entry | None:
        """A fresh entry, or None."""
        entry = self.entries.get(key)
        if entry is None or entry.expires <= self.clock():
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def stale(self, key: Key) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None or entry.expires + self.limits.stale_seconds <= self.clock():
            return None
        return entry

    def put(self, key: Key, wire: bytes) -> int:
        """Keep an upstream answer for as long as its TTLs allow; returns that TTL."""
        parsed = dnswire.ttl_offsets(wire)
        if parsed is None:
            return 0
        ttls, smallest = parsed
        rcode = dnswire.rcode_of(wire)
        if rcode == dnswire.NXDOMAIN or (
            rcode == dnswire.NOERROR and not dnswire.answer_count(wire)
        ):
            ttl = min(
                dnswire.negative_ttl(wire, self.limits.negative_ttl), self.limits.negative_ttl
            )
        elif rcode == dnswire.NOERROR:
            ttl = min(smallest, self.limits.max_ttl) if smallest >= 0 else 0
        else:
            return 0  # errors are not kept
        if ttl <= 0:
            return 0
        if len(self.entries) >= self.limits.max_entries and key not in self.entries:
            self._evict()
        now = self.clock()
        self.entries[key] = Entry(wire, ttls, now, now + ttl)
        return ttl

    def _evict(self) -> None:
        """Drop expired entries, or else the oldest tenth (dicts keep insertion order)."""
        now = self.clock()
        expired = [k for k, e in self.entries.items() if e.expires <= now]
        for key in expired or list(self.entries)[: max(1, len(self.entries) // 10)]:
            del self.entries[key]

    def answer(self, entry: Entry, data: bytes, q: dnswire.Query, stale: bool = False) -> bytes:
        elapsed = int(self.clock() - entry.stored)
        ttls = entry.ttls
        if stale:
            ttls = tuple((off, self.limits.stale_ttl + elapsed) for off, _ in ttls)
        return dnswire.patch_cached(entry.wire, data, q.question_end, ttls, elapsed)

    def elapsed(self, entry: Entry) -> int:
        return int(self.clock() - entry.stored)

    def clear(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)

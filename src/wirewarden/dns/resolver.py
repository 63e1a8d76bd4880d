"""The resolver's decisions: who asks, under which policy, and what to answer.

`handle` is the fast path, run inline for every datagram: it reads the question
from the wire, and answers blocked names, cache hits and errors from bytes at
once. Only a cache miss becomes a coroutine (`resolve`), which asks the upstreams
through dnspython, fills the cache and, when no upstream answers, serves a stale
copy within bounds or SERVFAIL. Nothing is ever sent to any other resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import dns.exception
import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype

from wirewarden.dns.cache import AnswerCache, Entry, Key
from wirewarden.dns.upstream import UpstreamSet
from wirewarden.domain import dnswire
from wirewarden.domain.dnsrules import CompiledPolicy, Verdict
from wirewarden.domain.dnsstate import DEFAULT_POLICY, Client

log = logging.getLogger(__name__)
BLOCK_TTL = 60
MAX_VERDICTS = 200_000
MAX_PACKETS = 50_000
_FOREVER = float("inf")

# Query log record: (at, peer_id, peer, client, policy, name, qtype, status, reason,
# rcode, upstream, latency_ms, count): `count` identical queries, the first at `at`.
Record = tuple[
    float,
    int | None,
    str | None,
    str,
    str,
    str | bytes,
    int,
    str,
    str | None,
    int,
    str | None,
    float | None,
    int,
]
RECORD_FIELDS = (
    "at", "peer_id", "peer", "client", "policy", "name", "qtype", "status", "reason",
    "rcode", "upstream", "latency_ms", "count",
)  # fmt: skip
# What fast-path answers are counted under: (client, policy, question: wire name + type
# and class, status, reason, rcode).
LogKey = tuple[str, str, bytes, str, str | None, int]
Outcome = bytes | Coroutine[Any, Any, bytes | None] | None


class PolicyRuntime:
    """A compiled policy and the verdicts it already gave, by wire name (names repeat
    a lot, and the fast path has only the bytes)."""

    __slots__ = ("answers", "compiled", "verdicts")

    def __init__(self, compiled: CompiledPolicy) -> None:
        self.compiled = compiled
        self.verdicts: dict[bytes, Verdict | None] = {}
        # Blocked answers by question, for the fast path to patch and send.
        self.answers: dict[tuple[bytes, bool, bool], bytes] = {}

    def keep_answer(self, q: dnswire.Query, wire: bytes) -> None:
        if q.wire_name:
            if len(self.answers) >= MAX_VERDICTS:
                self.answers.clear()
            self.answers[q.key] = wire

    def verdict(self, q: dnswire.Query) -> Verdict | None:
        found = self.verdicts.get(q.wire_name, _UNKNOWN) if q.wire_name else _UNKNOWN
        if found is not _UNKNOWN:
            return found  # type: ignore[return-value]
        verdict = self.compiled.verdict(q.name)
        if q.wire_name:
            if len(self.verdicts) >= MAX_VERDICTS:
                self.verdicts.clear()
            self.verdicts[q.wire_name] = verdict
        return verdict


_UNKNOWN = object()


class Packet(NamedTuple):
    """A fast-path answer kept for the very same query: plain values only (the garbage
    collector does not track it)."""

    tail: bytes  # the answer after its id
    until: float  # cache clock: valid before this (a TTL in it changes at that second)
    logkey: LogKey
    counter: tuple[str, str]  # (policy, status)
    peer_id: int | None
    peer: str | None
    entry: Entry | None = None  # the cache entry it came from (None: a block)
    end: int = 0  # where the question ends in the query


@dataclass
class Routing:
    """Who may ask and with which policy; replaced whole when the directory changes."""

    clients: dict[str, Client] = field(default_factory=dict)
    policies: dict[str, PolicyRuntime] = field(default_factory=dict)
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    allow_any: bool = False  # bench and tests: every source gets the default policy
    # The packet cache (Resolver.handle): answers by (source, query bytes after the id).
    # It lives and dies with this routing, so a new policy or client map starts it empty.
    packets: dict[tuple[str, bytes], Packet] = field(default_factory=dict)

    def policy_for(self, ip: str, client: Client | None) -> PolicyRuntime | None:
        """None for a source that is no peer of ours and in none of our networks."""
        if client is not None:
            return self.policies.get(client.policy) or self.policies.get(DEFAULT_POLICY)
        if self.allow_any or self._in_networks(ip):
            return self.policies.get(DEFAULT_POLICY)
        return None

    def _in_networks(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return False
        return addr.is_loopback or any(addr in net for net in self.networks)


class QueryLog:
    """Records waiting to be written; bounded, so a stuck writer costs memory, not queries.

    Fast-path answers (cache hits, known blocked names) are counted by (client, policy,
    question, outcome) until the next `take`, which makes one record with a count of
    each: at tens of thousands of queries a second, a row per query cost the writer
    more CPU than the resolver spent answering them (docs/benchmarks.md, dns_bench).
    Answers from the slow path (upstream, stale, errors) stay a record each.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.pending: deque[Record] = deque(maxlen=limit)
        # Counts and (first seen, peer_id, peer) by key: ints and tuples of plain values,
        # which the garbage collector stops tracking (lists would be scanned, and promoted
        # to the oldest generation, forcing full collections: pauses of tens of ms).
        self.counts: dict[LogKey, int] = {}
        self.firsts: dict[LogKey, tuple[float, int | None, str | None]] = {}
        self.sealed: list[Window] = []
        self.dropped = 0
        self.limit = limit

    def add(self, record: Record) -> None:
        if len(self.pending) >= self.limit:
            self.dropped += 1
        self.pending.append(record)

    def seal(self) -> None:
        """Close the counts so far (before the routing changes: they belong to the old
        routing's peers and policies); they go with the next `take`."""
        if self.counts:
            self.sealed.append((self.counts, self.firsts))
            self.counts, self.firsts = {}, {}

    def take(self) -> LogBatch:
        """Everything since the last take. Cheap on purpose: this runs on the event loop,
        and the writer thread makes the records (LogBatch.records)."""
        pending = list(self.pending)
        self.pending.clear()
        self.seal()
        windows, self.sealed = self.sealed, []
        return LogBatch(pending, windows)


Window = tuple[dict[LogKey, int], dict[LogKey, tuple[float, int | None, str | None]]]


@dataclass
class LogBatch:
    pending: list[Record]
    windows: list[Window]

    def __bool__(self) -> bool:
        return bool(self.pending or self.windows)

    def records(self) -> list[Record]:
        """All of it as records, in no particular order (the writer sorts)."""
        out = list(self.pending)
        for counts, firsts in self.windows:
            out += counted_records((key, count, firsts[key]) for key, count in counts.items())
        return out


def counted_records(
    counted: Iterable[tuple[LogKey, int, tuple[float, int | None, str | None]]],
) -> list[Record]:
    """Records of counted fast-path answers: (key, count, (first seen, peer_id, peer))."""
    out: list[Record] = []
    for key, count, (at, peer_id, peer) in counted:
        client, policy, question, status, reason, rcode = key
        qtype, name = (question[-4] << 8) | question[-3], question[:-4]
        record = (at, peer_id, peer, client, policy, name, qtype, status, reason, rcode)
        out.append((*record, None, None, count))
    return out


def _same_ttls_until(entry: Entry, elapsed: int) -> float:
    """Until when an answer patched `elapsed` whole seconds after it was cached stays the
    same: the TTLs in it drop at the next second, and it is gone when the entry expires."""
    return min(entry.expires, entry.stored + elapsed + 1)


class Counters:
    """Answers by policy and outcome, for stats and Prometheus."""

    def __init__(self) -> None:
        self.by: dict[tuple[str, str], int] = {}

    def add(self, policy: str, status: str) -> None:
        key = (policy, status)
        self.by[key] = self.by.get(key, 0) + 1


class Resolver:
    def __init__(self, upstreams: UpstreamSet, cache: AnswerCache, log: QueryLog) -> None:
        self.upstreams = upstreams
        self.cache = cache
        self.log = log
        self.counters = Counters()
        self.routing = Routing()
        self.inflight: dict[Key, asyncio.Future[bytes | None]] = {}

    # ------------------------------------------------------------- fast path

    def handle(self, data: bytes, ip: str, tcp: bool) -> Outcome:
        """The answer to one message: bytes now, a coroutine for a cache miss, or None
        for something not to answer at all."""
        if not tcp:
            # The same bytes from the same source, answered within the same second of the
            # cached entry's age (or blocked, under the same routing): the same answer
            # but for the id. A packet cache as in dnsdist; it halves the per-query work.
            packet = (ip, data[2:])
            hit = self.routing.packets.get(packet)
            if hit is not None:
                now = self.cache.clock()
                if hit.until > now:
                    self._tally(hit.counter, hit.logkey, hit.peer_id, hit.peer)
                    if hit.entry is not None:
                        self.cache.hits += 1
                    return data[:2] + hit.tail
                if hit.entry is not None and hit.entry.expires > now:
                    return self._aged(data, packet, hit, hit.entry, now)
        fast = dnswire.fast_question(data)
        if fast is not None:
            out = self._fast(data, ip, tcp, fast)
            if out is not None:
                return out
        return self._parsed(data, ip, tcp)

    def _aged(
        self, data: bytes, packet: tuple[str, bytes], hit: Packet, entry: Entry, now: float
    ) -> bytes:
        """A packet whose cache entry is still fresh but a second older: its TTLs patched
        again, with what the fast path had found kept (policy, verdict, log key)."""
        self.cache.hits += 1
        elapsed = int(now - entry.stored)
        out = dnswire.patch_cached(entry.wire, data, hit.end, entry.ttls, elapsed)
        until = _same_ttls_until(entry, elapsed)
        self.routing.packets[packet] = Packet(
            out[2:], until, hit.logkey, hit.counter, hit.peer_id, hit.peer, entry, hit.end
        )
        self._tally(hit.counter, hit.logkey, hit.peer_id, hit.peer)
        return out

    def _fast(
        self, data: bytes, ip: str, tcp: bool, fast: tuple[bytes, bytes, int, bool, bool, int]
    ) -> bytes | None:
        """Cache hits and known blocked names from prebuilt bytes (id, RD/CD, question and
        TTLs patched); None: take the full path (first sight of a name, a miss, an
        answer too big for UDP). Written flat: this runs for nearly every query."""
        name, tail, end, edns, do, udp = fast
        routing = self.routing
        client = routing.clients.get(ip)
        policy = routing.policy_for(ip, client)
        if policy is None:
            return None
        verdict = policy.verdicts.get(name, _UNKNOWN)
        if verdict is _UNKNOWN:
            return None
        key = (name + tail, edns, do)
        if verdict is not None:
            wire = policy.answers.get(key)
            if wire is None:
                return None  # the full path builds it once and keeps it
            out = dnswire.patch_cached(wire, data, end, (), 0)
            status, reason = "blocked", verdict.reason  # type: ignore[attr-defined]
            until, kept = _FOREVER, None
        else:
            cache = self.cache
            entry = cache.entries.get(key)
            now = cache.clock()
            if entry is None or entry.expires <= now:
                return None
            cache.hits += 1
            elapsed = int(now - entry.stored)
            out = dnswire.patch_cached(entry.wire, data, end, entry.ttls, elapsed)
            if not tcp and len(out) > (min(udp, 4096) if edns else dnswire.PLAIN_UDP):
                return None
            status, reason = "cached", None
            until = _same_ttls_until(entry, elapsed)
            kept = entry
        logkey = (ip, policy.compiled.name, key[0], status, reason, out[3] & 0xF)
        counter = (logkey[1], status)
        peer_id, peer = (client.peer_id, client.peer) if client else (None, None)
        self._tally(counter, logkey, peer_id, peer)
        if not tcp:
            packets = routing.packets
            if len(packets) >= MAX_PACKETS:
                packets.clear()
            packets[(ip, data[2:])] = Packet(
                out[2:], until, logkey, counter, peer_id, peer, kept, end
            )
        return out

    def _tally(
        self, counter: tuple[str, str], logkey: LogKey, peer_id: int | None, peer: str | None
    ) -> None:
        """Count a fast-path answer for Prometheus and the query log."""
        counts = self.counters.by
        counts[counter] = counts.get(counter, 0) + 1
        log = self.log
        seen = log.counts.get(logkey)
        if seen is not None:
            log.counts[logkey] = seen + 1
        elif len(log.counts) < log.limit:
            log.counts[logkey] = 1
            log.firsts[logkey] = (time.time(), peer_id, peer)
        else:
            log.dropped += 1

    def _parsed(self, data: bytes, ip: str, tcp: bool) -> Outcome:
        q = dnswire.parse_query(data)
        if q is None:
            return dnswire.error_response(data, dnswire.FORMERR)
        if q.opcode != 0:
            return dnswire.error_response(data, dnswire.NOTIMP)
        routing = self.routing
        client = routing.clients.get(ip)
        policy = routing.policy_for(ip, client)
        if policy is None or q.qclass != dnswire.CLASS_IN:
            self._log(q, ip, client, "-", "refused", None, dnswire.REFUSED)
            return dnswire.make_response(data, q, dnswire.REFUSED)
        name = policy.compiled.name
        verdict = policy.verdict(q)
        if verdict is not None:
            out = self._block_answer(data, q, verdict)
            policy.keep_answer(q, out)
            self._log(q, ip, client, name, "blocked", verdict.reason, dnswire.rcode_of(out))
            return out
        entry = self.cache.get(q.key)
        if entry is not None:
            self._log(q, ip, client, name, "cached", None, dnswire.rcode_of(entry.wire))
            return self._fit(self.cache.answer(entry, data, q), data, q, tcp)
        return self.resolve(data, q, ip, client, name, tcp)

    @staticmethod
    def _block_answer(data: bytes, q: dnswire.Query, verdict: Verdict) -> bytes:
        if verdict.answer == "nodata":
            return dnswire.make_response(data, q, dnswire.NOERROR)
        return dnswire.blocked_response(data, q, verdict.answer == "null-ip", BLOCK_TTL)

    @staticmethod
    def _fit(out: bytes, data: bytes, q: dnswire.Query, tcp: bool) -> bytes:
        if not tcp and len(out) > dnswire.udp_limit(q):
            return dnswire.truncated(data, q)
        return out

    def _log(
        self,
        q: dnswire.Query,
        ip: str,
        client: Client | None,
        policy: str,
        status: str,
        reason: str | None,
        rcode: int,
        upstream: str | None = None,
        latency: float | None = None,
    ) -> None:
        self._record(ip, client, policy, q.name, q.qtype, status, reason, rcode, upstream, latency)

    def _record(
        self,
        ip: str,
        client: Client | None,
        policy: str,
        name: str | bytes,
        qtype: int,
        status: str,
        reason: str | None,
        rcode: int,
        upstream: str | None = None,
        latency: float | None = None,
    ) -> None:
        """One query log record; a bytes name (the fast path's) is made text by the writer."""
        self.counters.add(policy, status)
        peer_id, peer = (client.peer_id, client.peer) if client else (None, None)
        self.log.add(
            (
                time.time(),
                peer_id,
                peer,
                ip,
                policy,
                name,
                qtype,
                status,
                reason,
                rcode,
                upstream,
                latency,
                1,
            )
        )

    # ------------------------------------------------------------- slow path

    async def resolve(
        self, data: bytes, q: dnswire.Query, ip: str, client: Client | None, policy: str, tcp: bool
    ) -> bytes | None:
        key = q.key
        waiting = self.inflight.get(key)
        if waiting is not None:
            wire = await asyncio.shield(waiting)
            upstream: str | None = "shared"
            latency: float | None = None
        else:
            future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
            self.inflight[key] = future
            upstream = latency = None
            try:
                answer = await self._ask(data, q)
                wire = answer.wire if answer else None
                if answer is not None:
                    upstream, latency = answer.upstream, answer.latency_ms
                    self.cache.put(key, wire)  # type: ignore[arg-type]
            except Exception:  # a bug must cost one answer (SERVFAIL), never the server
                log.exception("resolving %s failed", q.name)
                wire = None
            finally:
                future.set_result(wire)
                del self.inflight[key]
        if wire is None:
            return self._failed(data, q, ip, client, policy, tcp)
        out = dnswire.patch_cached(wire, data, q.question_end, (), 0)
        self._log(q, ip, client, policy, "resolved", None, dnswire.rcode_of(out), upstream, latency)
        return self._fit(out, data, q, tcp)

    def _failed(
        self, data: bytes, q: dnswire.Query, ip: str, client: Client | None, policy: str, tcp: bool
    ) -> bytes:
        stale = self.cache.stale(q.key)
        if stale is not None:
            out = self.cache.answer(stale, data, q, stale=True)
            self._log(q, ip, client, policy, "stale", "no upstream answered", dnswire.rcode_of(out))
            return self._fit(out, data, q, tcp)
        self._log(q, ip, client, policy, "servfail", "no upstream answered", dnswire.SERVFAIL)
        return dnswire.make_response(data, q, dnswire.SERVFAIL)

    async def _ask(self, data: bytes, q: dnswire.Query) -> Any:
        try:
            asked = dns.message.from_wire(data, ignore_trailing=True)
            qname = asked.question[0].name
        except (dns.exception.DNSException, IndexError, ValueError):
            return None
        request = dns.message.make_query(
            qname,
            dns.rdatatype.RdataType.make(q.qtype),
            dns.rdataclass.RdataClass.make(q.qclass),
            use_edns=0 if q.edns else False,
            want_dnssec=q.do,
            payload=dnswire.OUR_UDP,
        )
        if q.flags & dnswire.CD:
            request.flags |= dns.flags.CD
        return await self.upstreams.query(request)

"""Upstream resolvers: plain DNS (UDP, TCP when truncated) and DNS over TLS (on a kept,
pipelined connection: dot.py), with health.

Upstreams are tried in the configured order, skipping those marked down after
repeated failures (a down one is tried again after a pause, and as a last resort
when all are down). When none answers, the caller answers SERVFAIL: queries are
never sent anywhere else.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import dns.asyncquery
import dns.edns
import dns.exception
import dns.message
import dns.rcode

from wirewarden.dns.dot import IDLE_SECONDS, DotClient
from wirewarden.domain.unbound import DEFAULT_HOST, DEFAULT_PORT

log = logging.getLogger(__name__)

ATTEMPT_TIMEOUT = 2.0
FAILURES_TO_DOWN = 3
DOWN_SECONDS = 30.0
# The local Unbound serve starts (dataplane/unbound.py): asked as plain DNS on loopback.
UNBOUND = "unbound"
# Extended DNS Errors (RFC 8914) a validating resolver gives with SERVFAIL when a name's
# DNSSEC fails (unsupported algorithm or digest, indeterminate, bogus, expired, not yet
# valid, DNSKEY/RRSIG/NSEC missing, no zone key bit).
DNSSEC_FAILURES = frozenset({1, 2, 5, 6, 7, 8, 9, 10, 11, 12})


@dataclass
class Upstream:
    scheme: str  # "udp", "tls", or "unbound" (plain DNS to the local Unbound we run)
    host: str
    port: int
    tls_name: str | None = None
    failures: int = 0
    down_until: float = 0.0
    answered: int = 0
    failed: int = 0
    last_error: str | None = None
    latency_ms: float = 0.0  # moving average

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        name = f"#{self.tls_name}" if self.tls_name else ""
        return f"{self.scheme}://{host}:{self.port}{name}"

    def healthy(self, now: float) -> bool:
        return now >= self.down_until

    def succeeded(self, elapsed: float) -> None:
        self.failures, self.down_until, self.answered = 0, 0.0, self.answered + 1
        ms = elapsed * 1000
        self.latency_ms = ms if not self.latency_ms else 0.8 * self.latency_ms + 0.2 * ms

    def fail(self, error: str, now: float) -> None:
        self.failures, self.failed, self.last_error = self.failures + 1, self.failed + 1, error
        if self.failures >= FAILURES_TO_DOWN:
            self.down_until = now + DOWN_SECONDS


def parse_upstream(text: str) -> Upstream:
    """`udp://host[:port]`, `tls://host[:port][#name]`, or `unbound[://host:port]` (a
    local Unbound we start, on a loopback address); hosts are IP addresses (a resolver
    cannot ask itself where its upstream is). Raises ValueError."""
    if (spec := text.strip()) == UNBOUND:
        return Upstream(UNBOUND, DEFAULT_HOST, DEFAULT_PORT)
    parts = urlsplit(spec)
    if parts.scheme not in ("udp", "tls", UNBOUND):
        raise ValueError(f"{text!r}: the scheme must be udp://, tls:// or unbound://")
    try:
        host = parts.hostname or ""
        address = ipaddress.ip_address(host)
        port = parts.port or {"tls": 853, UNBOUND: DEFAULT_PORT}.get(parts.scheme, 53)
    except ValueError as exc:
        raise ValueError(f"{text!r}: the host must be an IP address with an optional port") from exc
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{text!r}: unexpected path or query")
    name = parts.fragment or None
    if parts.scheme != "tls" and name:
        raise ValueError(f"{text!r}: a #name is only for tls:// upstreams")
    if parts.scheme == UNBOUND and not address.is_loopback:
        raise ValueError(f"{text!r}: the local Unbound listens on a loopback address only")
    return Upstream(parts.scheme, host, port, name if parts.scheme == "tls" else None)


def parse_upstreams(text: str) -> list[Upstream]:
    upstreams = [parse_upstream(part) for part in text.split(",") if part.strip()]
    if sum(u.scheme == UNBOUND for u in upstreams) > 1:
        raise ValueError(f"{text!r}: one local Unbound at most")
    return upstreams


def dnssec_failed(response: dns.message.Message) -> bool:
    """A SERVFAIL that says the name failed validation: the upstream's answer, to pass on
    (asking another upstream, maybe one that does not validate, would undo the check)."""
    return response.rcode() == dns.rcode.SERVFAIL and any(
        isinstance(option, dns.edns.EDEOption) and option.code in DNSSEC_FAILURES
        for option in response.options
    )


@dataclass
class Answer:
    wire: bytes
    upstream: str
    latency_ms: float


@dataclass
class UpstreamSet:
    upstreams: list[Upstream]
    timeout: float = ATTEMPT_TIMEOUT
    _tls: ssl.SSLContext | None = field(default=None, repr=False)
    dot_idle: float = IDLE_SECONDS
    # Kept DoT connections by upstream label, opened on the resolver's loop when needed.
    _dot: dict[str, DotClient] = field(default_factory=dict, repr=False)

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()  # verifies the chain and the name
        return self._tls

    def order(self, now: float) -> list[Upstream]:
        healthy = [u for u in self.upstreams if u.healthy(now)]
        return healthy or list(self.upstreams)

    async def query(self, request: dns.message.Message) -> Answer | None:
        """The first good answer, or None when every upstream failed."""
        for upstream in self.order(time.monotonic()):
            started = time.monotonic()
            try:
                response = await self._ask(upstream, request)
            except (OSError, EOFError, dns.exception.DNSException, ssl.SSLError) as exc:
                upstream.fail(f"{type(exc).__name__}: {exc}", time.monotonic())
                log.debug("upstream %s failed: %s", upstream.label, exc)
                continue
            failed = response.rcode() in (dns.rcode.SERVFAIL, dns.rcode.REFUSED)
            if failed and not dnssec_failed(response):
                upstream.fail(dns.rcode.to_text(response.rcode()), time.monotonic())
                continue
            elapsed = time.monotonic() - started
            upstream.succeeded(elapsed)
            wire = response.to_wire(max_size=65535)
            return Answer(wire, upstream.label, elapsed * 1000)
        return None

    async def _ask(self, upstream: Upstream, request: dns.message.Message) -> dns.message.Message:
        if upstream.scheme == "tls":
            client = self._dot.get(upstream.label)
            if client is None:
                name, context = upstream.tls_name or upstream.host, self._context()
                client = DotClient(upstream.host, upstream.port, name, context, self.dot_idle)
                self._dot[upstream.label] = client
            return await client.query(request, self.timeout)
        response, _ = await dns.asyncquery.udp_with_fallback(
            request, upstream.host, timeout=self.timeout, port=upstream.port
        )
        return response

    async def close(self) -> None:
        """Close kept connections (DoT)."""
        for client in self._dot.values():
            await client.close()
        self._dot.clear()

    def status(self) -> list[dict[str, object]]:
        now = time.monotonic()
        return [
            {
                "upstream": u.label,
                "healthy": u.healthy(now),
                "answered": u.answered,
                "failed": u.failed,
                "last_error": u.last_error,
                "latency_ms": round(u.latency_ms, 2),
            }
            for u in self.upstreams
        ]

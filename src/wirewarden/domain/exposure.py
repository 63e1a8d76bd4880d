"""Expose: port sets a peer may publish, the client's mapping specs, leases, and the
nftables part that forwards a public port to a peer in the kernel. Pure values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from wirewarden.domain.addresses import host_of

Proto = Literal["tcp", "udp"]
PROTOS: tuple[Proto, ...] = ("tcp", "udp")
# The client renews every HEARTBEAT; a mapping lives LEASE after the last renewal.
HEARTBEAT = timedelta(seconds=20)
LEASE = timedelta(seconds=60)


class ExposeError(ValueError):
    """A port set or mapping spec that cannot be used; `field` names what was wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PortSet:
    """Ports and ranges, e.g. "8000-8100,9000" (empty: none)."""

    ranges: tuple[tuple[int, int], ...] = ()

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and any(lo <= port <= hi for lo, hi in self.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __str__(self) -> str:
        return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)

    def within(self, other: PortSet) -> bool:
        """Every port of this set is in `other` (a plan's ceiling)."""
        return all(_covered(lo, hi, other.ranges) for lo, hi in self.ranges)


def _covered(lo: int, hi: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    for a, b in ranges:  # sorted and merged: one pass
        if a <= lo <= b:
            if hi <= b:
                return True
            lo = b + 1
    return False


def _port(text: str, where: str) -> int:
    if not text.strip().isdigit():
        raise ExposeError(f"{where}: {text.strip()!r} is not a port number", where)
    port = int(text)
    if not 1 <= port <= 65535:
        raise ExposeError(f"{where}: port {port} is outside 1-65535", where)
    return port


def parse_ports(text: str | None, where: str = "expose_ports") -> PortSet:
    """A port set from its text; ranges sorted and merged. Raises ExposeError naming `where`."""
    spans: list[tuple[int, int]] = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        lo_text, dash, hi_text = part.partition("-")
        lo = _port(lo_text, where)
        hi = _port(hi_text, where) if dash else lo
        if hi < lo:
            raise ExposeError(f"{where}: range {part.strip()!r} ends before it starts", where)
        spans.append((lo, hi))
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return PortSet(tuple(merged))


@dataclass(frozen=True)
class MappingSpec:
    """What `wirewarden expose LOCAL_HOST:LOCAL_PORT-REMOTE_PORT[/udp]` asks for."""

    local_host: str
    local_port: int
    remote_port: int
    proto: Proto = "tcp"

    def __str__(self) -> str:
        suffix = "/udp" if self.proto == "udp" else ""
        return f"{self.local_host}:{self.local_port}-{self.remote_port}{suffix}"


def parse_spec(text: str) -> MappingSpec:
    """'127.0.0.1:8080-8080', '[::1]:53-5353/udp', '8080' (localhost, same port)."""
    where = "mapping"
    body, slash, proto = text.strip().partition("/")
    proto = proto.lower() if slash else "tcp"
    if proto not in PROTOS:
        raise ExposeError(f"{where} {text!r}: protocol must be tcp or udp", where)
    host, colon, ports = body.rpartition(":") if ":" in body else ("", "", body)
    host = host.strip("[]") if colon else "127.0.0.1"
    if not host:
        raise ExposeError(f"{where} {text!r}: no local host before ':'", where)
    local_text, dash, remote_text = ports.partition("-")
    local = _port(local_text, where)
    remote = _port(remote_text, where) if dash else local
    return MappingSpec(host, local, remote, "udp" if proto == "udp" else "tcp")


@dataclass(frozen=True)
class NameSpec:
    """What `wirewarden expose --http NAME=[LOCAL_HOST:]LOCAL_PORT` asks for: an HTTP
    service by name (the server checks the name itself)."""

    name: str
    local_host: str
    local_port: int

    def __str__(self) -> str:
        return f"{self.name}={self.local_host}:{self.local_port}"


def parse_name_spec(text: str) -> NameSpec:
    """'blog=127.0.0.1:3000', 'blog=3000' (localhost)."""
    where = "--http"
    name, equals, target = text.strip().partition("=")
    if not equals or not name.strip():
        raise ExposeError(f"{where} {text!r}: NAME=[LOCAL_HOST:]LOCAL_PORT expected", where)
    host, colon, port = target.rpartition(":") if ":" in target else ("", "", target)
    host = host.strip("[]") if colon else "127.0.0.1"
    if not host:
        raise ExposeError(f"{where} {text!r}: no local host before ':'", where)
    return NameSpec(name.strip().lower(), host, _port(port, where))


def host_port_taken(proto: str, port: int) -> str:
    """Why a port held by a socket of the node's own host is not published."""
    return f"{proto} port {port} is taken by a service of the server"


def lease_until(now: datetime) -> datetime:
    return now + LEASE


def expired(expires_at: datetime, now: datetime) -> bool:
    return expires_at <= now


@dataclass(frozen=True)
class Forward:
    """One live mapping as the kernel needs it: public port -> peer address and port."""

    proto: Proto
    remote_port: int
    address: str  # the peer's tunnel address (IPv4)
    local_port: int
    # The peer's client routes only the VPN: replies would not come back through the
    # tunnel unless the server shows its gateway as the source.
    snat: bool = True

    @classmethod
    def of(
        cls, proto: str, remote_port: int, address: str, local_port: int, allowed: Iterable[str]
    ) -> Forward:
        """A mapping's forward to a peer (`address` with or without its prefix length) whose
        AllowedIPs are `allowed`: a client routing everything through the tunnel sends
        replies back by it, one routing only the VPN needs the gateway as the source."""
        return cls.all_of(address, allowed, [(proto, remote_port, local_port)])[0]

    @classmethod
    def all_of(
        cls, address: str, allowed: Iterable[str], ports: Iterable[tuple[str, int, int]]
    ) -> tuple[Forward, ...]:
        """One peer's forwards, (proto, remote port, local port) each: its address and
        routing looked at once, not per mapping (a peer may publish a thousand)."""
        host = host_of(address)
        snat = "0.0.0.0/0" not in [a.strip() for a in allowed]
        return tuple(
            cls("udp" if proto == "udp" else "tcp", remote, host, local, snat)
            for proto, remote, local in ports
        )

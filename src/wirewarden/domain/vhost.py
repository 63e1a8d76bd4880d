"""HTTP services by name (expose): the names a peer may publish, the host a visitor asks
for (the Host header of HTTP, the SNI of a TLS ClientHello), and the route it takes.

A published name always sits under its tenant's zone, `<name>.<tenant>.<domain>`, so a
wildcard reaches no further than its own tenant: no name, wildcard or not, catches
another tenant's hosts. Lookup follows frp: the exact name, then the nearest wildcard.
Parsers take hostile bytes: anything they cannot read is "no host", never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

import h11

from wirewarden.domain.classify.tls import (
    Malformed,
    Truncated,
    client_hello_name,
    looks_like_record,
    record_payload,
)
from wirewarden.domain.exposure import ExposeError

# How much of a connection's start is read to find its host: an HTTP head or a TLS
# ClientHello larger than this is refused (post-quantum key shares stay far below).
HEAD_LIMIT = 16384
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_NAME_LABELS = 4
_REQUEST_LINE = re.compile(rb"^[A-Z]{3,10} \S+ HTTP/1\.[01]$")

Wanted = Literal["more", "none"]
T = TypeVar("T")


def _is_label(text: str) -> bool:
    return bool(_LABEL.match(text))


def check_name(name: str) -> str:
    """A name a peer publishes: 1-4 DNS labels, optionally led by `*.` (a wildcard),
    lower-cased. Raises ExposeError naming `name`."""
    text = name.strip().lower().rstrip(".")
    labels = text.split(".")
    body = labels[1:] if labels[0] == "*" else labels
    # A bare `*` would catch every name of the tenant its peers did not publish.
    if not body or len(labels) > MAX_NAME_LABELS or not all(_is_label(x) for x in body):
        raise ExposeError(
            f"name {name!r}: up to {MAX_NAME_LABELS} labels of a-z, 0-9 and '-' "
            "(a leading '*.' for a wildcard)",
            "name",
        )
    return text


def zone(tenant: str, domain: str) -> str:
    """Where a tenant's names live. Raises ExposeError when the tenant's name is no DNS
    label (an underscore) or the domain is not a host name."""
    if not _is_label(tenant):
        raise ExposeError(f"tenant {tenant!r} is not a DNS label: it can publish no name", "name")
    domain = domain.strip().lower().rstrip(".")
    if not domain or not all(_is_label(x) for x in domain.split(".")):
        raise ExposeError(f"WIREWARDEN_EXPOSE_DOMAIN {domain!r} is not a host name", "name")
    return f"{tenant}.{domain}"


def hostname(name: str, tenant: str, domain: str) -> str:
    """The full host name of a published `name`, e.g. blog.acme.vpn.example.com."""
    full = f"{check_name(name)}.{zone(tenant, domain)}"
    if len(full) > 253:
        raise ExposeError(f"name {name!r}: {full!r} is longer than 253 characters", "name")
    return full


def normal_host(text: str) -> str | None:
    """A host as asked for, lower-cased, without port or trailing dot; None when it is not
    a host name (an address literal, garbage)."""
    host = text.strip().lower()
    if host.startswith("["):
        return None
    host = host.rsplit(":", 1)[0] if ":" in host else host
    host = host.rstrip(".")
    labels = host.split(".")
    if not host or len(host) > 253 or not all(_is_label(x) for x in labels):
        return None
    return None if labels[-1].isdigit() else host  # 10.0.0.1 is an address


def route(host: str, names: Mapping[str, T]) -> T | None:
    """The route (a mapping id) for `host` among the published `names`: the exact name,
    else the nearest wildcard (`*.b.c` for a.b.c, then `*.c`)."""
    if host in names:
        return names[host]
    labels = host.split(".")
    for cut in range(1, len(labels)):
        found = names.get("*." + ".".join(labels[cut:]))
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Asked:
    """What an HTTP request's head asks for."""

    host: str
    target: str  # the path and query, for a redirect


def http_host(head: bytes) -> Asked | Wanted:
    """The host an HTTP/1.x request asks for (its Host header) and its target: "more"
    while the head is incomplete, "none" when it is not a request naming a host."""
    if not head:
        return "more"  # (no bytes would tell h11 the connection ended)
    line, crlf, _ = head.partition(b"\r\n")
    if crlf and not _REQUEST_LINE.match(line):
        return "none"  # not HTTP/1.x (SSH, TLS on the wrong port): no need to wait for more
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_LIMIT)
    try:
        conn.receive_data(head)
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return "none"
    if event is h11.NEED_DATA:
        return "more" if len(head) < HEAD_LIMIT else "none"
    if not isinstance(event, h11.Request):
        return "none"
    for key, value in event.headers:
        if key == b"host":
            host = normal_host(value.decode("latin-1"))
            target = event.target.decode("latin-1")
            return Asked(host, target if target.startswith("/") else "/") if host else "none"
    return "none"


def tls_host(start: bytes) -> str | Wanted:
    """The SNI host name of the TLS ClientHello `start` begins with: "more" while it is
    incomplete, "none" when it is not one or names no host."""
    if len(start) < 3:
        return "more"
    if not looks_like_record(start):
        return "none"
    try:
        name = client_hello_name(record_payload(start))
    except Truncated:
        return "more" if len(start) < HEAD_LIMIT else "none"
    except (Malformed, ValueError, IndexError):
        return "none"
    return (normal_host(name) if name else None) or "none"


@dataclass(frozen=True)
class Route:
    """Where the front listener sends a visitor of a published name."""

    mapping_id: int
    address: str  # the peer's tunnel address
    port: int  # the relay port on it
    tls: bool  # the service speaks TLS: reached on the HTTPS port, passed through


@dataclass(frozen=True)
class NodeNames:
    """The names a node's own front listener serves (its peers' HTTP services) and its
    ports: part of the node's desired state. The control plane's front, where the one
    wildcard record of the zone points, passes a visitor of such a name to that node's
    front unopened, which routes it by the same Host or SNI to its peer."""

    http_port: int
    https_port: int
    routes: tuple[tuple[str, Route], ...] = ()  # (host, route), sorted by host

    def table(self) -> dict[str, Route]:
        return dict(self.routes)


@dataclass(frozen=True)
class NameZone:
    """Where this server publishes names: under `domain`, its front listener's ports."""

    domain: str
    http_port: int = 80
    https_port: int = 443

    def port(self, tls: bool) -> int:
        return self.https_port if tls else self.http_port

    def url(self, host: str, tls: bool) -> str:
        scheme, port = ("https", self.https_port) if tls else ("http", self.http_port)
        default = 443 if tls else 80
        return f"{scheme}://{host}" + ("" if port == default else f":{port}")

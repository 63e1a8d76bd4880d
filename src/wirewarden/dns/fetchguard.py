"""Where a blocklist may be fetched from: not this host, not its loopback, link-local,
unspecified or multicast addresses (a URL naming one would let an admin's list, or a
redirect from a list server, probe services that trust local callers).

The check happens where the connection is made: the name is resolved once, every address
it has must pass, and the socket connects to an address that passed, so neither a second
resolution (DNS rebinding) nor a redirect gets around it. TLS still verifies the name."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable

import httpcore
import httpx

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(ValueError):
    """The list's host is one we do not fetch from."""


def refusal(ip: IP) -> str | None:
    """Why a list may not come from this address; None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for reason, hit in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
    ):
        if hit:
            return reason
    return "this host's own address" if _is_own(ip) else None


def _is_own(ip: IP) -> bool:
    # An address binds only where it is assigned to this host: no list of interfaces to
    # read (and keep fresh) for the answer.
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(ip), 0))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return False
            raise
    return True


def _resolve(host: str, port: int) -> list[IP]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    seen: dict[str, IP] = {}
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        seen.setdefault(address, ipaddress.ip_address(address))
    return list(seen.values())


def check_addresses(host: str, addresses: Iterable[IP]) -> None:
    for ip in addresses:
        reason = refusal(ip)
        if reason is not None:
            raise RefusedAddress(
                f"{host} is {ip} ({reason}): blocklists are not fetched from this host or "
                "local-only addresses (WIREWARDEN_DNS_LISTS_ALLOW_PRIVATE allows it)"
            )


class GuardedBackend(httpcore.SyncBackend):
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host, port)
        if not self.allow_private:
            check_addresses(host, addresses)
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for ip in addresses:
            try:
                return super().connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on a pool that connects through GuardedBackend (httpx takes no
    network backend of its own, so the pool is rebuilt with the same TLS settings)."""

    def __init__(self, allow_private: bool) -> None:
        super().__init__(trust_env=False)  # a proxy would connect for us, unchecked
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=GuardedBackend(allow_private),
        )

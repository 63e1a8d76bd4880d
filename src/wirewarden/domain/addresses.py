"""The one strict parser of every address, network, host name and endpoint we accept.

Python's `ipaddress` is lenient where a config line must not be: it takes an IPv6 scope
id of any text (`fe80::1%x\\nPreUp = …`), so a value it accepts can carry a newline into a
wg-quick file, where `wg-quick up` runs it as root. Every address-shaped value that
reaches a config, a system tool or the database goes through these functions first: the
text is checked character by character before `ipaddress` sees it, and the canonical
spelling `ipaddress` gives back is what we keep.

Host-safety (which networks may become an interface's) is here too: it is a property of
the address alone, or of the address and the host's own networks, both plain values.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wirewarden.domain.state import HostFootprint

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

# Characters an IP address is written with: no '%' (scope ids), no space, no control.
_IP_CHARS = re.compile(r"[0-9A-Fa-f:.]{2,45}")
# A prefix length, or an IPv4 netmask (wg-quick files written as 10.8.0.1/255.255.255.0).
_PREFIX = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9]{1,3}")
_PORT = re.compile(r"[0-9]{1,5}")
# RFC 1123 labels: letters, digits and inner hyphens, 63 at most.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAX_HOSTNAME = 253


class AddressError(ValueError):
    """Text that is not the address, network, host name or endpoint it should be."""


def host_of(address: str) -> str:
    """A stored address without its prefix length ("10.8.0.2/32" -> "10.8.0.2"). Stored
    addresses are already in normal form: this is a string cut, cheap at 10,000 peers."""
    return address.partition("/")[0]


def ip(text: str) -> IPAddress:
    """An IPv4 or IPv6 address, strictly: no scope id, no whitespace, nothing else."""
    if not _IP_CHARS.fullmatch(text):
        raise AddressError(f"{_show(text)} is not an IP address")
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise AddressError(f"{_show(text)} is not an IP address") from exc


def _checked(text: str, what: str) -> str:
    """`text` as address/prefix, once every character of it is one an address may hold."""
    host, slash, prefix = text.partition("/")
    if slash and not _PREFIX.fullmatch(prefix):
        raise AddressError(f"{_show(text)} is not {what}")
    try:
        address = ip(host)
    except AddressError as exc:
        raise AddressError(f"{_show(text)} is not {what}") from exc
    return f"{address}/{prefix if slash else address.max_prefixlen}"


def network(text: str, strict: bool = True) -> IPNetwork:
    """A CIDR network (a bare address is its /32 or /128); host bits refused if `strict`."""
    spelled = _checked(text, "a valid network")
    try:
        return ipaddress.ip_network(spelled, strict=strict)
    except ValueError as exc:
        raise AddressError(f"{_show(text)} is not a valid network ({exc})") from exc


def interface(text: str) -> IPInterface:
    """An address with its prefix, e.g. 10.8.0.1/24 (a bare address: /32 or /128)."""
    spelled = _checked(text, "an address with a prefix, like 10.8.0.1/24")
    try:
        return ipaddress.ip_interface(spelled)
    except ValueError as exc:
        raise AddressError(f"{_show(text)} is not an address with a prefix ({exc})") from exc


def is_ip(text: str, version: int | None = None) -> bool:
    try:
        found = ip(text)
    except AddressError:
        return False
    return version is None or found.version == version


def is_hostname(text: str) -> bool:
    """A DNS name by RFC 1123 (a trailing dot allowed); an all-numeric name is not one."""
    labels = text.removesuffix(".").split(".")
    if all(label.isdigit() for label in labels):
        return False  # a mistyped IPv4 address, never a real host
    return len(text) <= MAX_HOSTNAME and all(_LABEL.fullmatch(label) for label in labels)


def endpoint(text: str, port_required: bool = False) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address, nothing before or
    after: (host, port), the host without brackets."""
    if is_ip(text, version=6):
        host, port_text = text, None
    elif text.startswith("["):
        host, closing, rest = text[1:].partition("]")
        if not closing or not is_ip(host, version=6):
            raise AddressError(f"{_show(text)} is not a valid endpoint; write IPv6 as [address]")
        if rest and not rest.startswith(":"):
            raise AddressError(f"{_show(text)}: nothing may follow ']' but ':port'")
        port_text = rest[1:] if rest else None
    else:
        host, colon, after = text.rpartition(":") if ":" in text else (text, "", "")
        if ":" in host:
            raise AddressError(f"{_show(text)}: an IPv6 endpoint needs brackets, e.g. [::1]:51820")
        if not (is_ip(host, version=4) or is_hostname(host)):
            raise AddressError(f"{_show(host)} is not a valid host name or IP address")
        port_text = after if colon else None
    if port_text is None:
        if port_required:
            raise AddressError(f"{_show(text)} has no port; write it as host:port")
        return host, None
    return host, port(port_text)


def format_endpoint(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets as wg(8) wants it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise AddressError(f"{_show(text)} is not a port (a whole number from 1 to 65535)")
    return int(text)


def _show(text: str) -> str:
    # repr() shows a newline as \n: the error names what was sent without breaking lines.
    return repr(text[:80])


# --- which networks may be an interface's ----------------------------------------------

# Networks no tunnel may take, and what they are to the host.
_RESERVED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(n), kind)
    for n, kind in (
        ("0.0.0.0/8", "unspecified ('this network')"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/96", "unspecified and loopback"),
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)


def reserved_reason(net: IPNetwork) -> str | None:
    """Why `net` can never be a tunnel network, or None when it may be."""
    for block, kind in _RESERVED:
        if block.version == net.version and net.overlaps(block):
            return f"{net} overlaps {block}, which is {kind} space"
    return None


def host_clash(net: IPNetwork, host_networks: Iterable[str]) -> str | None:
    """The host's own network (an address or a route of a link not ours) `net` overlaps."""
    for text in host_networks:
        theirs = ipaddress.ip_network(text, strict=False)
        if theirs.version == net.version and theirs.prefixlen > 0 and net.overlaps(theirs):
            return text
    return None


def host_refusal(
    name: str, networks: Iterable[str], port: int | None, host: HostFootprint
) -> tuple[str, str] | None:
    """(field, reason) when an interface would take something of the host's, else None."""
    if name in host.links:
        return "name", f"{name!r} is a link of this host that is not a WireGuard device"
    for text in networks:
        clash = host_clash(ipaddress.ip_interface(text).network, host.networks)
        if clash:
            return "address", f"{text} overlaps {clash}, a network of this host"
    if port is not None and port in host.udp_ports:
        return "listen_port", f"UDP port {port} is in use on this host"
    return None

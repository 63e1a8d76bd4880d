"""The flow and payload of one IP packet, as the queue hands it over (no link header)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from wirewarden.domain.classify.flows import Proto

_TCP, _UDP = 6, 17
_IPV6_NEXT_HEADERS = {0, 43, 60}  # hop-by-hop, routing, destination options


@dataclass(frozen=True)
class Flow:
    proto: Proto
    source: str
    source_port: int
    destination: str
    destination_port: int


@dataclass(frozen=True)
class Packet:
    flow: Flow
    payload: bytes


def parse(raw: bytes) -> Packet | None:
    """None for anything that is not TCP or UDP over IPv4/IPv6 or is cut short."""
    if not raw:
        return None
    version = raw[0] >> 4
    if version == 4:
        return _ipv4(raw)
    if version == 6:
        return _ipv6(raw)
    return None


def _ipv4(raw: bytes) -> Packet | None:
    header = (raw[0] & 0x0F) * 4
    if header < 20 or len(raw) < header:
        return None
    if int.from_bytes(raw[6:8], "big") & 0x1FFF:
        return None  # a later fragment: no transport header
    total = min(int.from_bytes(raw[2:4], "big"), len(raw))
    return _transport(raw[9], raw[header:total], _dotted(raw[12:16]), _dotted(raw[16:20]))


def _dotted(four: bytes) -> str:
    # What str(IPv4Address) gives, at a tenth of its cost: every queued packet pays it twice.
    return f"{four[0]}.{four[1]}.{four[2]}.{four[3]}"


def _ipv6(raw: bytes) -> Packet | None:
    if len(raw) < 40:
        return None
    source = str(ipaddress.IPv6Address(raw[8:24]))
    destination = str(ipaddress.IPv6Address(raw[24:40]))
    next_header, at = raw[6], 40
    while next_header in _IPV6_NEXT_HEADERS and at + 2 <= len(raw):
        next_header, at = raw[at], at + (raw[at + 1] + 1) * 8
    return _transport(next_header, raw[at:], source, destination)


def _transport(proto: int, segment: bytes, source: str, destination: str) -> Packet | None:
    if proto == _TCP and len(segment) >= 20:
        offset = (segment[12] >> 4) * 4
        if offset < 20 or offset > len(segment):
            return None
        return Packet(_flow("tcp", segment, source, destination), segment[offset:])
    if proto == _UDP and len(segment) >= 8:
        return Packet(_flow("udp", segment, source, destination), segment[8:])
    return None


def _flow(proto: Proto, segment: bytes, source: str, destination: str) -> Flow:
    return Flow(
        proto,
        source,
        int.from_bytes(segment[0:2], "big"),
        destination,
        int.from_bytes(segment[2:4], "big"),
    )

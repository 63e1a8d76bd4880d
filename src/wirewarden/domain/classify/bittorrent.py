"""BitTorrent on the wire: the TCP handshake, DHT messages over UDP, uTP's header."""

from __future__ import annotations

HANDSHAKE = b"\x13BitTorrent protocol"
# Every DHT query ("a": arguments) and answer ("r": return values) opens with the
# sender's 20-byte node id (BEP 5); bencoded dictionaries sort their keys.
_DHT_PREFIXES = (b"d1:ad2:id20:", b"d1:rd2:id20:")
_UTP_HEADER = 20
_ST_SYN = 4
_UTP_VERSION = 1
_UTP_LAST_EXTENSION = 2


def is_handshake(payload: bytes) -> bool:
    """The peer wire protocol's first bytes (BEP 3), in either direction."""
    return payload.startswith(HANDSHAKE)


def is_dht(payload: bytes) -> bool:
    return payload.startswith(_DHT_PREFIXES) and payload.endswith(b"e")


def is_utp_syn(payload: bytes) -> bool:
    """A uTP connection's first packet (BEP 29): version 1, type ST_SYN, a known
    extension, and no data yet (only extension blocks may follow the header)."""
    if len(payload) < _UTP_HEADER:
        return False
    kind, version = payload[0] >> 4, payload[0] & 0x0F
    if kind != _ST_SYN or version != _UTP_VERSION:
        return False
    return _extensions_end(payload) == len(payload)


def _extensions_end(payload: bytes) -> int | None:
    """Where the chain of extension blocks after the header ends (None: malformed)."""
    extension, at = payload[1], _UTP_HEADER
    while extension != 0:
        if extension > _UTP_LAST_EXTENSION or at + 2 > len(payload):
            return None
        extension, length = payload[at], payload[at + 1]
        at += 2 + length
        if at > len(payload):
            return None
    return at

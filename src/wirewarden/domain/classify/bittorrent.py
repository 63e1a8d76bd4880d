"""BitTorrent on the wire: the TCP handshake, DHT messages over UDP, uTP's header, and
the announces to trackers (over HTTP and UDP) that a client finds its peers with."""

from __future__ import annotations

import re

HANDSHAKE = b"\x13BitTorrent protocol"
# Every DHT query ("a": arguments) and answer ("r": return values) opens with the
# sender's 20-byte node id (BEP 5); bencoded dictionaries sort their keys.
_DHT_PREFIXES = (b"d1:ad2:id20:", b"d1:rd2:id20:")
_UTP_HEADER = 20
_ST_SYN = 4
_UTP_VERSION = 1
_UTP_LAST_EXTENSION = 2
# A tracker's announce and scrape (BEP 3, BEP 48) are HTTP requests whose query names the
# torrent by `info_hash`, whatever the path (private trackers put a passkey in it). A
# client whose announces fail learns no peers: with its DHT messages and plain handshakes
# refused too, it has no one to fetch from, encrypted handshakes or not.
_TRACKER_QUERY = re.compile(rb"^(?:GET|HEAD) [^ ?]*\?(?:[^ ]*&)?info_hash=[^ &]")
# BEP 15: a UDP tracker is opened with a 16-byte connect request, the protocol's
# constant, action 0 (connect), and a transaction id.
_UDP_TRACKER_CONNECT = (0x41727101980).to_bytes(8, "big") + bytes(4)


def is_handshake(payload: bytes) -> bool:
    """The peer wire protocol's first bytes (BEP 3), in either direction."""
    return payload.startswith(HANDSHAKE)


def is_tracker_request(payload: bytes) -> bool:
    """An HTTP announce or scrape to a tracker (the request line alone decides)."""
    return _TRACKER_QUERY.match(payload) is not None


def is_udp_tracker_connect(payload: bytes) -> bool:
    return len(payload) == 16 and payload.startswith(_UDP_TRACKER_CONNECT)


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

"""DNS wire format, the little the resolver's fast path needs (RFC 1035, 6891).

Reads the question of a query straight from the bytes and builds the answers the
resolver makes itself (blocked names, errors, truncation) without a message
library. Every reader returns None or -1 on malformed input and never raises on
any bytes: the input is whatever arrived on port 53.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = 12
QR, AA, TC, RD, RA, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0010
OPCODE_MASK = 0x7800
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_AAAA, TYPE_OPT = 1, 2, 5, 6, 28, 41
CLASS_IN = 1
MAX_NAME = 255
MAX_POINTERS = 32  # more jumps than any honest name needs: a loop
PLAIN_UDP = 512
OUR_UDP = 1232  # the size we advertise (DNS flag day 2020)

_HDR = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_TTL = struct.Struct("!I")
_QTAIL = struct.Struct("!HH")

TYPE_NAMES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    35: "NAPTR",
    43: "DS",
    48: "DNSKEY",
    64: "SVCB",
    65: "HTTPS",
    255: "ANY",
}


def type_name(qtype: int) -> str:
    return TYPE_NAMES.get(qtype, f"TYPE{qtype}")


@dataclass(frozen=True, slots=True)
class Query:
    """The parts of a query the resolver decides on."""

    id: int
    flags: int
    name: str  # lower case, no trailing dot; "" is the root
    qtype: int
    qclass: int
    question_end: int  # offset just past the question (name + type + class)
    edns: bool
    udp_size: int  # what the client accepts over UDP
    do: bool  # DNSSEC OK
    wire_name: bytes = b""  # the name as sent, lower case (b"" when it used a pointer)

    @property
    def opcode(self) -> int:
        return (self.flags & OPCODE_MASK) >> 11

    @property
    def key(self) -> tuple[bytes, bool, bool]:
        """What a cached answer is filed under: the question's bytes (name in lower
        case, type, class), EDNS and DO; the fast path builds the same key."""
        tail = _QTAIL.pack(self.qtype, self.qclass)
        return (self.wire_name + tail, self.edns, self.do)


# One question, no answer or authority records, at most the OPT record: nearly every
# query a stub resolver sends. (flags byte 2: QR and opcode bits zero)
_COMMON = b"\x00\x01\x00\x00\x00\x00"


def fast_question(data: bytes) -> tuple[bytes, bytes, int, bool, bool, int] | None:
    """For a query of the common shape: (lower-case wire name, type+class bytes,
    question end, edns, do, udp size); None for anything else (parse it fully).

    The name ends at its first zero byte, which holds for every name without a
    pointer or a zero inside a label; a key built from such a cut never equals
    the key of a name that was fully parsed, so using it only to look up what a
    full parse stored is safe.
    """
    if len(data) < HEADER + 5 or data[2] & 0xF8 or data[4:10] != _COMMON:
        return None
    zero = data.find(b"\x00", HEADER)
    end = zero + 5
    if zero < 0 or end > len(data):
        return None
    name = data[HEADER : zero + 1].lower()
    if data[10:12] == b"\x00\x00":
        return (
            (name, data[zero + 1 : end], end, False, False, PLAIN_UDP) if end == len(data) else None
        )
    if data[10:12] != b"\x00\x01" or data[end : end + 3] != b"\x00\x00\x29" or len(data) < end + 11:
        return None
    udp = max(PLAIN_UDP, (data[end + 3] << 8) | data[end + 4])
    return name, data[zero + 1 : end], end, True, bool(data[end + 7] & 0x80), udp


def wire_to_text(name: bytes) -> str:
    """A wire name without pointers (as fast_question returns it) in dotted form."""
    labels = []
    off = 0
    while off < len(name) and name[off]:
        size = name[off]
        labels.append(name[off + 1 : off + 1 + size])
        off += 1 + size
    return b".".join(labels).decode("ascii", "replace")


def skip_name(data: bytes, off: int) -> int:
    """Offset just past the name at `off` (a pointer ends it), or -1 when malformed."""
    size = len(data)
    while off < size:
        length = data[off]
        if length == 0:
            return off + 1
        if length >= 0xC0:
            return off + 2 if off + 2 <= size else -1
        if length > 63:
            return -1
        off += 1 + length
    return -1


def read_name(data: bytes, off: int) -> tuple[str, int] | None:
    """The name at `off` (pointers followed, bounded) and the offset past it."""
    labels: list[bytes] = []
    end = -1
    jumps = total = 0
    size = len(data)
    while True:
        if off >= size:
            return None
        length = data[off]
        if length >= 0xC0:
            if off + 2 > size or jumps >= MAX_POINTERS:
                return None
            if end < 0:
                end = off + 2
            target = ((length & 0x3F) << 8) | data[off + 1]
            if target >= off:
                return None  # pointers only point back: forward ones can loop
            off, jumps = target, jumps + 1
            continue
        if length > 63:
            return None
        if length == 0:
            break
        total += length + 1
        if total > MAX_NAME or off + 1 + length > size:
            return None
        labels.append(data[off + 1 : off + 1 + length])
        off += 1 + length
    if end < 0:
        end = off + 1
    try:
        name = b".".join(labels).decode("ascii").lower()
    except UnicodeDecodeError:
        name = b".".join(labels).decode("latin-1").lower()
    return name, end


def parse_query(data: bytes) -> Query | None:
    """The question of a query, or None when the bytes are not a query we can read."""
    if len(data) < HEADER + 5:
        return None
    ident, flags, qd, an, ns, ar = _HDR.unpack_from(data)
    if flags & QR or qd != 1:
        return None
    parsed = read_name(data, HEADER)
    if parsed is None:
        return None
    name, off = parsed
    if off + 4 > len(data):
        return None
    qtype, qclass = _QTAIL.unpack_from(data, off)
    question_end = off + 4
    opt = _find_opt(data, question_end, an + ns, ar)
    if opt is None:
        return None
    edns, udp_size, do = opt
    wire_name = b"" if _has_pointer(data, HEADER) else data[HEADER:off].lower()
    return Query(ident, flags, name, qtype, qclass, question_end, edns, udp_size, do, wire_name)


def _has_pointer(data: bytes, off: int) -> bool:
    """Whether the (already validated) name at `off` uses a compression pointer."""
    while data[off]:
        if data[off] >= 0xC0:
            return True
        off += 1 + data[off]
    return False


def _find_opt(data: bytes, off: int, skip: int, additional: int) -> tuple[bool, int, bool] | None:
    """(edns, udp size, DO) from the OPT record, if any; None when the records are broken."""
    edns, udp, do = False, PLAIN_UDP, False
    for index in range(skip + additional):
        end = skip_name(data, off)
        if end < 0 or end + 10 > len(data):
            return None
        rtype, rclass, ttl, rdlen = _RR.unpack_from(data, end)
        if index >= skip and rtype == TYPE_OPT:
            edns, udp, do = True, max(PLAIN_UDP, rclass), bool(ttl & 0x8000)
        off = end + 10 + rdlen
        if off > len(data):
            return None
    return edns, udp, do


def ttl_offsets(data: bytes) -> tuple[tuple[tuple[int, int], ...], int] | None:
    """(offset, TTL) of each record of a response, and the smallest TTL.

    The OPT record's TTL field holds flags, not a TTL, so it is left out. The
    smallest TTL is -1 when there is no record with a TTL. None when malformed.
    """
    if len(data) < HEADER:
        return None
    _, _, qd, an, ns, ar = _HDR.unpack_from(data)
    off = HEADER
    for _ in range(qd):
        off = skip_name(data, off)
        if off < 0 or off + 4 > len(data):
            return None
        off += 4
    found: list[tuple[int, int]] = []
    smallest = -1
    for _ in range(an + ns + ar):
        end = skip_name(data, off)
        if end < 0 or end + 10 > len(data):
            return None
        rtype, _, ttl, rdlen = _RR.unpack_from(data, end)
        if rtype != TYPE_OPT:
            found.append((end + 4, ttl))
            smallest = ttl if smallest < 0 else min(smallest, ttl)
        off = end + 10 + rdlen
        if off > len(data):
            return None
    return tuple(found), smallest


def negative_ttl(data: bytes, default: int) -> int:
    """The negative-caching TTL of an NXDOMAIN/NODATA answer: min(SOA TTL, SOA MINIMUM)."""
    if len(data) < HEADER:
        return default
    _, _, qd, an, ns, _ = _HDR.unpack_from(data)
    off = HEADER
    for _ in range(qd):
        off = skip_name(data, off)
        if off < 0:
            return default
        off += 4
    for index in range(an + ns):
        end = skip_name(data, off)
        if end < 0 or end + 10 > len(data):
            return default
        rtype, _, ttl, rdlen = _RR.unpack_from(data, end)
        if index >= an and rtype == TYPE_SOA:
            rdata_end = end + 10 + rdlen
            if rdata_end > len(data) or rdlen < 22:
                return default
            (minimum,) = _TTL.unpack_from(data, rdata_end - 4)
            return int(min(ttl, minimum))
        off = end + 10 + rdlen
    return default


def rcode_of(data: bytes) -> int:
    return int(data[3] & 0x0F) if len(data) >= 4 else SERVFAIL


def answer_count(data: bytes) -> int:
    return (data[6] << 8) | data[7] if len(data) >= 8 else 0


def _opt_record(do: bool) -> bytes:
    return b"\x00" + struct.pack("!HHIH", TYPE_OPT, OUR_UDP, 0x8000 if do else 0, 0)


def _response_flags(query_flags: int, rcode: int) -> int:
    return QR | (query_flags & (OPCODE_MASK | RD | CD)) | RA | rcode


def make_response(
    data: bytes, q: Query, rcode: int, answers: bytes = b"", count: int = 0, tc: bool = False
) -> bytes:
    """A response to `data` built from its own question: header, question, answers, OPT."""
    flags = _response_flags(q.flags, rcode) | (TC if tc else 0)
    header = _HDR.pack(q.id, flags, 1, count, 0, 1 if q.edns else 0)
    tail = _opt_record(q.do) if q.edns else b""
    return header + data[HEADER : q.question_end] + answers + tail


def error_response(data: bytes, rcode: int) -> bytes | None:
    """FORMERR/NOTIMP/REFUSED... for a message we did not parse: header only, same id.

    None when there is not even a header, or the message is itself a response
    (answering responses would let two resolvers bounce packets forever).
    """
    if len(data) < HEADER:
        return None
    ident, flags = struct.unpack_from("!HH", data)
    if flags & QR:
        return None
    return _HDR.pack(ident, _response_flags(flags, rcode), 0, 0, 0, 0)


def null_answer(q: Query, ttl: int) -> tuple[bytes, int]:
    """0.0.0.0 for A, :: for AAAA, nothing for other types: (records, count)."""
    if q.qtype == TYPE_A:
        rdata = b"\x00" * 4
    elif q.qtype == TYPE_AAAA:
        rdata = b"\x00" * 16
    else:
        return b"", 0
    # 0xC00C points at the question's name.
    return b"\xc0\x0c" + struct.pack("!HHIH", q.qtype, CLASS_IN, ttl, len(rdata)) + rdata, 1


def blocked_response(data: bytes, q: Query, null_ip: bool, ttl: int) -> bytes:
    if null_ip:
        records, count = null_answer(q, ttl)
        return make_response(data, q, NOERROR, records, count)
    return make_response(data, q, NXDOMAIN)


def truncated(data: bytes, q: Query) -> bytes:
    """The TC answer that sends a UDP client over to TCP."""
    return make_response(data, q, NOERROR, tc=True)


def udp_limit(q: Query) -> int:
    return min(max(q.udp_size, PLAIN_UDP), 4096) if q.edns else PLAIN_UDP


def patch_cached(
    wire: bytes, data: bytes, question_end: int, ttls: tuple[tuple[int, int], ...], elapsed: int
) -> bytes:
    """A cached response made the answer to the query `data`: its id, its RD and CD
    bits, the question as the client spelled it (0x20 case), each TTL less the time
    elapsed. The question has the same length in both (the same name)."""
    out = bytearray(wire)
    out[0:2] = data[0:2]
    out[2] = (out[2] & 0xFE) | (data[2] & 0x01)  # RD
    out[3] = (out[3] & 0xEF) | (data[3] & 0x10)  # CD
    out[HEADER:question_end] = data[HEADER:question_end]
    if elapsed > 0:
        for off, ttl in ttls:
            _TTL.pack_into(out, off, max(ttl - elapsed, 0))
    return bytes(out)

"""DNS wire parsing and answers built from bytes: odd packets never crash."""

from __future__ import annotations

import random
import struct

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from wirewarden.domain import dnswire


def query(name: str = "www.Example.com", rdtype: str = "A", **kw: object) -> bytes:
    msg = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    msg.id = 0x1234
    return msg.to_wire()


def test_plain_query_is_read_from_the_wire() -> None:
    q = dnswire.parse_query(query())
    assert q is not None
    assert (q.id, q.name, q.qtype, q.qclass) == (0x1234, "www.example.com", 1, 1)
    assert not q.edns and q.udp_size == 512
    assert q.key == (b"\x03www\x07example\x03com\x00\x00\x01\x00\x01", False, False)


@pytest.mark.parametrize(
    "kw", [{}, {"use_edns": 0}, {"use_edns": 0, "want_dnssec": True, "payload": 4096}]
)
def test_the_fast_path_files_queries_under_the_full_parse_key(kw: dict[str, object]) -> None:
    data = query("WwW.Example.com", "AAAA", **kw)
    q = dnswire.parse_query(data)
    fast = dnswire.fast_question(data)
    assert q is not None and fast is not None
    name, tail, end, edns, do, udp = fast
    assert (name + tail, edns, do) == q.key
    assert (end, udp) == (q.question_end, q.udp_size)
    assert dnswire.wire_to_text(name) == "www.example.com"


def test_the_fast_path_leaves_odd_queries_to_the_full_parse() -> None:
    pointer = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01"
    inner_zero = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x03a\x00b\x00\x00\x01\x00\x01"
    trailing = query() + b"junk"
    with_answer = bytearray(query())
    with_answer[7] = 1
    for data in (pointer, trailing, bytes(with_answer), b"\x00" * 5):
        assert dnswire.fast_question(data) is None
    fast = dnswire.fast_question(inner_zero)
    full = dnswire.parse_query(inner_zero)
    assert full is not None and full.name == "a\x00b"
    assert fast is None or (fast[0] + fast[1], fast[3], fast[4]) != full.key


def test_edns_size_and_do_bit() -> None:
    q = dnswire.parse_query(query(use_edns=0, payload=4096, want_dnssec=True))
    assert q is not None and q.edns and q.do and q.udp_size == 4096
    assert dnswire.udp_limit(q) == 4096


def test_edns_with_options_and_a_cookie() -> None:
    wire = query(use_edns=0, options=[dns.edns.GenericOption(10, b"\x01" * 8)])
    q = dnswire.parse_query(wire)
    assert q is not None and q.edns


def test_root_query() -> None:
    q = dnswire.parse_query(query(".", "NS"))
    assert q is not None and q.name == "" and q.qtype == 2


def test_compression_pointer_in_an_additional_record_is_followed() -> None:
    # A TSIG-like additional record whose owner name points back at the question.
    base = bytearray(query("a.example.com"))
    base[11] = 1  # ARCOUNT
    base += b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, 2) + b"\x01x"
    q = dnswire.parse_query(bytes(base))
    assert q is not None and q.name == "a.example.com" and not q.edns


def test_pointer_loops_and_forward_pointers_are_refused() -> None:
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    assert dnswire.read_name(header + b"\xc0\x0c", 12) is None  # points at itself
    assert dnswire.read_name(header + b"\xc0\x20", 12) is None  # forward
    assert dnswire.parse_query(header + b"\xc0\x0c\x00\x01\x00\x01") is None


def test_pointer_to_an_earlier_name_is_read() -> None:
    data = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x03abc\x00" + b"\x01x\xc0\x0c"
    assert dnswire.read_name(data, 17) == ("x.abc", 21)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",  # header only
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example",  # name cut short
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00",  # type/class cut
        b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",  # 2 questions
        b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",  # a response
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x01\x00\x01\x00\x00",  # bad OPT
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x40"
        + b"a" * 64
        + b"\x00\x00\x01\x00\x01",
    ],
)
def test_malformed_messages_are_not_queries(data: bytes) -> None:
    assert dnswire.parse_query(data) is None


def test_too_long_names_are_refused() -> None:
    name = b"".join(b"\x3f" + b"a" * 63 for _ in range(5)) + b"\x00"
    data = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"
    assert dnswire.parse_query(data) is None


def test_random_garbage_never_raises() -> None:
    rng = random.Random(7)
    seeds = [query(), query(use_edns=0), query("x.y", "AAAA")]
    for _ in range(20_000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[: rng.randint(0, len(data))]
        q = dnswire.parse_query(bytes(data))
        dnswire.ttl_offsets(bytes(data))
        dnswire.negative_ttl(bytes(data), 5)
        dnswire.error_response(bytes(data), dnswire.FORMERR)
        if q is not None:
            dnswire.make_response(bytes(data), q, dnswire.NXDOMAIN)
    for _ in range(5_000):
        blob = bytes(rng.randrange(256) for _ in range(rng.randint(0, 80)))
        dnswire.parse_query(blob)
        dnswire.ttl_offsets(blob)


def test_error_response_keeps_the_id_and_never_answers_a_response() -> None:
    out = dnswire.error_response(b"\xab\xcd\x01\x00" + b"\x00" * 8, dnswire.FORMERR)
    assert out is not None and out[:2] == b"\xab\xcd" and out[3] & 0xF == dnswire.FORMERR
    assert dnswire.error_response(b"\xab\xcd\x81\x00" + b"\x00" * 8, 1) is None
    assert dnswire.error_response(b"\x01", 1) is None


def test_nxdomain_answer_echoes_the_question_and_edns() -> None:
    data = query("Ads.Example.com", use_edns=0, want_dnssec=True)
    q = dnswire.parse_query(data)
    assert q is not None
    msg = dns.message.from_wire(dnswire.blocked_response(data, q, False, 60))
    assert msg.id == 0x1234 and msg.rcode() == dns.rcode.NXDOMAIN
    assert msg.flags & dns.flags.QR and msg.flags & dns.flags.RD and msg.flags & dns.flags.RA
    assert str(msg.question[0].name) == "Ads.Example.com."
    assert msg.edns == 0 and msg.ednsflags & dns.flags.DO


@pytest.mark.parametrize(("rdtype", "text"), [("A", "0.0.0.0"), ("AAAA", "::")])
def test_null_ip_answer(rdtype: str, text: str) -> None:
    data = query("ads.example.com", rdtype)
    q = dnswire.parse_query(data)
    assert q is not None
    msg = dns.message.from_wire(dnswire.blocked_response(data, q, True, 60))
    assert msg.rcode() == dns.rcode.NOERROR
    assert [r.to_text() for r in msg.answer[0]] == [text] and msg.answer[0].ttl == 60


def test_null_ip_for_other_types_is_nodata() -> None:
    data = query("ads.example.com", "MX")
    q = dnswire.parse_query(data)
    assert q is not None
    msg = dns.message.from_wire(dnswire.blocked_response(data, q, True, 60))
    assert msg.rcode() == dns.rcode.NOERROR and not msg.answer


def _response(name: str = "www.example.com.", ttl: int = 300) -> bytes:
    request = dns.message.make_query(name, "A", use_edns=0)
    response = dns.message.make_response(request)
    response.answer.append(dns.rrset.from_text(name, ttl, "IN", "CNAME", "x.example.com."))
    response.answer.append(dns.rrset.from_text("x.example.com.", ttl - 100, "IN", "A", "1.2.3.4"))
    return response.to_wire()


def test_ttl_offsets_skip_the_opt_record_and_follow_compression() -> None:
    wire = _response()
    parsed = dnswire.ttl_offsets(wire)
    assert parsed is not None
    offsets, smallest = parsed
    assert [ttl for _, ttl in offsets] == [300, 200] and smallest == 200


def test_cached_answer_is_patched_for_the_new_query() -> None:
    wire = _response()
    data = query("WWW.example.COM", use_edns=0)
    q = dnswire.parse_query(data)
    parsed = dnswire.ttl_offsets(wire)
    assert q is not None and parsed is not None
    out = dns.message.from_wire(dnswire.patch_cached(wire, data, q.question_end, parsed[0], 50))
    assert out.id == 0x1234
    assert str(out.question[0].name) == "WWW.example.COM."
    assert [rrset.ttl for rrset in out.answer] == [250, 150]


def test_negative_ttl_is_the_soa_minimum() -> None:
    request = dns.message.make_query("nx.example.com", "A")
    response = dns.message.make_response(request)
    response.set_rcode(dns.rcode.NXDOMAIN)
    response.authority.append(
        dns.rrset.from_text("example.com.", 900, "IN", "SOA", "ns. host. 1 2 3 4 120")
    )
    assert dnswire.negative_ttl(response.to_wire(), 5) == 120
    assert dnswire.negative_ttl(_response(), 5) == 5


def test_truncated_answer_sets_tc_without_records() -> None:
    data = query()
    q = dnswire.parse_query(data)
    assert q is not None
    msg = dns.message.from_wire(dnswire.truncated(data, q))
    assert msg.flags & dns.flags.TC and not msg.answer

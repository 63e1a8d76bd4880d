"""The classifier's parsers on the first packets of real clients, and on garbage."""

from __future__ import annotations

import random

import pytest

from tests import captures
from wirewarden.domain.classify import bittorrent, plain, quic, tls
from wirewarden.domain.classify.flows import MAX_PAYLOADS, classify
from wirewarden.domain.classify.verdict import UNDECIDED, Verdict

CAPTURED = ("curl_tls", "openssl_tls", "http", "ssh", "quic", "bt_plain", "dht")


@pytest.fixture(scope="module")
def caught(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    handshakes, dht, announce = captures.aria2_first_packets(tmp_path_factory.mktemp("aria2"))
    packets = {
        "curl_tls": captures.curl_https("www.example.test"),
        "openssl_tls": captures.openssl_hello("Mail.Example.Test"),
        "http": captures.curl_http("blog.example.test"),
        "ssh": captures.ssh_banner(),
        "quic": captures.quic_initial("video.example.test"),
        "bt_mse": handshakes[0],
        "bt_plain": handshakes[1],
        "dht": dht,
        "bt_announce": announce,
        "bt_udp_announce": captures.aria2_udp_announce(tmp_path_factory.mktemp("udp")),
    }
    assert all(packets.values()), {k: len(v) for k, v in packets.items()}
    return packets


def test_tls_client_hellos_name_their_server(caught: dict[str, bytes]) -> None:
    assert classify("tcp", [caught["curl_tls"]]) == Verdict("tls", "www.example.test")
    assert classify("tcp", [caught["openssl_tls"]]) == Verdict("tls", "mail.example.test")


def test_a_client_hello_split_over_segments_waits_for_the_rest(caught: dict[str, bytes]) -> None:
    hello = caught["curl_tls"]
    head, tail = hello[:100], hello[100:]
    assert classify("tcp", [head]) == UNDECIDED
    assert classify("tcp", [head, tail]) == Verdict("tls", "www.example.test")


def test_http_requests_name_their_host_without_the_port(caught: dict[str, bytes]) -> None:
    assert classify("tcp", [caught["http"]]) == Verdict("http", "blog.example.test")


def test_ssh_banners_in_either_direction(caught: dict[str, bytes]) -> None:
    assert classify("tcp", [caught["ssh"]]) == Verdict("ssh")
    # The server speaks first on ssh; the client's banner may be the second payload.
    server = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6\r\n"
    assert classify("tcp", [server]) == Verdict("ssh")


def test_quic_initials_are_decrypted_to_their_server_name(caught: dict[str, bytes]) -> None:
    assert classify("udp", [caught["quic"]]) == Verdict("quic", "video.example.test")


def test_a_quic_initial_with_a_flipped_byte_is_quic_without_a_name(
    caught: dict[str, bytes],
) -> None:
    damaged = bytearray(caught["quic"])
    damaged[200] ^= 0xFF  # inside the sealed payload: the AEAD tag no longer matches
    assert quic.initial_server_name(bytes(damaged)) is None
    assert classify("udp", [bytes(damaged)]) == Verdict("quic", None)


def test_bittorrent_handshake_and_dht_from_aria2(caught: dict[str, bytes]) -> None:
    assert classify("tcp", [caught["bt_plain"]]) == Verdict("bittorrent")
    assert classify("udp", [caught["dht"]]) == Verdict("bittorrent")


def test_a_clients_announces_to_its_trackers_are_bittorrent(caught: dict[str, bytes]) -> None:
    # aria2's real announce (HTTP, named by its tracker's host) and UDP connect request.
    assert classify("tcp", [caught["bt_announce"]]) == Verdict("bittorrent", "127.0.0.1")
    assert classify("udp", [caught["bt_udp_announce"]]) == Verdict("bittorrent")
    # A page whose path or another parameter merely mentions it stays HTTP.
    for line in (b"GET /info_hash=1 HTTP/1.1", b"GET /x?my_info_hash=1 HTTP/1.1",
                 b"GET /x?info_hash= HTTP/1.1", b"POST /x?info_hash=1 HTTP/1.1"):  # fmt: skip
        request = line + b"\r\nHost: www.example.test\r\n\r\n"
        assert classify("tcp", [request]) == Verdict("http", "www.example.test"), line
    # A connect request of BEP 15 is exactly 16 bytes with the protocol's constant.
    connect = caught["bt_udp_announce"]
    assert not bittorrent.is_udp_tracker_connect(connect + b"x")
    assert not bittorrent.is_udp_tracker_connect(bytes(8) + connect[8:])


def test_utp_syn_per_bep29() -> None:
    # No uTP client is packaged here (aria2 speaks TCP only): the header is BEP 29's.
    syn = bytes([0x41, 0]) + bytes(range(2, 20))
    with_extension = bytes([0x41, 2]) + bytes(range(2, 20)) + bytes([0, 8]) + bytes(8)
    assert bittorrent.is_utp_syn(syn)
    assert bittorrent.is_utp_syn(with_extension)
    assert classify("udp", [syn]) == Verdict("bittorrent")
    assert not bittorrent.is_utp_syn(syn + b"data")  # a SYN carries no data
    assert not bittorrent.is_utp_syn(bytes([0x41, 9]) + bytes(18))  # unknown extension
    assert not bittorrent.is_utp_syn(bytes([0x01, 0]) + bytes(18))  # ST_DATA, not a SYN


@pytest.mark.parametrize("name", CAPTURED)
def test_no_parser_claims_another_protocols_packet(caught: dict[str, bytes], name: str) -> None:
    packet = caught[name]
    claims = {
        "tls": tls.looks_like_record(packet),
        "http": plain.is_http_request(packet),
        "ssh": plain.is_ssh_banner(packet),
        "quic": quic.is_initial(packet),
        "bittorrent": bittorrent.is_handshake(packet)
        or bittorrent.is_dht(packet)
        or bittorrent.is_utp_syn(packet),
    }
    owner = {
        "curl_tls": "tls",
        "openssl_tls": "tls",
        "http": "http",
        "ssh": "ssh",
        "quic": "quic",
        "bt_plain": "bittorrent",
        "dht": "bittorrent",
    }[name]
    assert {app for app, claimed in claims.items() if claimed} == {owner}


def test_an_obfuscated_bittorrent_handshake_is_not_guessed(caught: dict[str, bytes]) -> None:
    # MSE looks like random bytes: nothing claims it, and after enough packets it is
    # `other` (the address cache, not the payload, catches such flows).
    assert classify("tcp", [caught["bt_mse"]]) == UNDECIDED
    assert classify("tcp", [caught["bt_mse"]] * MAX_PAYLOADS) == Verdict("other")


def test_nothing_found_in_the_first_packets_is_other() -> None:
    assert classify("udp", [b"\x00" * 40] * MAX_PAYLOADS) == Verdict("other")
    assert classify("tcp", []) == UNDECIDED
    assert classify("tcp", [b"", b""]) == UNDECIDED


def test_garbage_and_mangled_captures_never_raise(caught: dict[str, bytes]) -> None:
    rng = random.Random(20261204)
    samples = [rng.randbytes(rng.randrange(0, 1500)) for _ in range(2000)]
    for packet in caught.values():
        for _ in range(300):
            mangled = bytearray(packet[: rng.randrange(0, len(packet) + 1)])
            for _ in range(rng.randrange(0, 4)):
                if mangled:
                    mangled[rng.randrange(len(mangled))] = rng.randrange(256)
            samples.append(bytes(mangled))
    for sample in samples:
        for proto in ("tcp", "udp"):
            verdict = classify(proto, [sample])
            assert verdict.app is None or verdict.app in {
                "bittorrent",
                "tls",
                "quic",
                "http",
                "ssh",
                "other",
            }

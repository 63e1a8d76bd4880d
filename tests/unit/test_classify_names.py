"""Server names of classified flows (WIREWARDEN_CLASSIFY_NAMES): the queue reader's
classifier telling them on real first packets, the message between the two processes
(hostile names and garbage), the sink's socket and its bound, and when the reader runs
for them."""

from __future__ import annotations

import random
import stat
import time
from pathlib import Path

import pytest

from tests import captures
from tests.unit.test_classifier_control import Reader, _state
from wirewarden.dataplane.namesink import NameSink
from wirewarden.dataplane.nfqueue import Classifier, teller
from wirewarden.domain.classify.names import Seen, clean, decode, encode
from wirewarden.runtime.classifier import ClassifierControl

PEER, SERVER = "10.8.0.2", "198.51.100.7"


def _ipv4_tcp(payload: bytes, sport: int = 40000, dport: int = 443) -> bytes:
    """An IPv4/TCP packet from the peer carrying `payload` (what the queue hands over)."""
    header = bytes([0x45, 0]) + (40 + len(payload)).to_bytes(2, "big") + bytes(4)
    header += bytes([64, 6, 0, 0]) + bytes(map(int, PEER.split(".")))
    header += bytes(map(int, SERVER.split(".")))
    tcp = sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + bytes(8)
    tcp += bytes([0x50, 0x18]) + bytes(6)
    return header + tcp + payload


@pytest.fixture(scope="module")
def hellos() -> dict[str, bytes]:
    return {
        "tls": captures.curl_https("Shop.Example.Test"),
        "http": captures.curl_http("blog.example.test"),
        "ssh": captures.ssh_banner(),
    }


def test_a_decided_flow_tells_its_server_name_and_a_nameless_one_tells_none(
    hellos: dict[str, bytes],
) -> None:
    told: list[Seen] = []
    classifier = Classifier(named=told.append)
    assert classifier.verdict(_ipv4_tcp(hellos["tls"])) is not None
    assert classifier.verdict(_ipv4_tcp(hellos["http"], 40001, 80)) is not None
    assert classifier.verdict(_ipv4_tcp(hellos["ssh"], 40002, 22)) is not None
    assert told == [
        Seen(PEER, SERVER, "tls", "shop.example.test"),
        Seen(PEER, SERVER, "http", "blog.example.test"),
    ]
    # Without --names, nothing is told (and nothing breaks).
    assert Classifier().verdict(_ipv4_tcp(hellos["tls"], 40003)) is not None


def test_a_message_round_trips_and_hostile_names_or_garbage_are_dropped() -> None:
    seen = Seen(PEER, SERVER, "quic", "video.example.test")
    assert decode(encode(seen)) == seen
    hostile = [
        b"",
        b"null",
        b"[1,2,3]",
        b'["10.8.0.2","198.51.100.7","ssh","x.test"]',  # a class that names no server
        b'["10.8.0.2","198.51.100.7","tls","<script>alert(1)</script>"]',
        b'["10.8.0.2","198.51.100.7","tls","a\\u0000b.test"]',
        b'["10.8.0.2","198.51.100.7","tls","' + b"a" * 300 + b'"]',
        b'["' + b"1" * 100 + b'","198.51.100.7","tls","x.test"]',
        b'{"a": 1}',
        b"\xff\xfe",
    ]
    assert [decode(m) for m in hostile] == [None] * len(hostile)
    rng = random.Random(7)
    for _ in range(2000):  # never a crash
        decode(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80))))
    assert clean("WWW.Example.COM.") == "www.example.com"
    assert clean("exa mple.com") is None and clean("..") is None and clean(None) is None


def test_the_sink_counts_what_the_reader_tells_over_its_socket_within_bounds(
    tmp_path: Path,
) -> None:
    sink = NameSink(tmp_path / "names.sock", max_keys=3)
    sink.start()
    try:
        assert stat.S_IMODE((tmp_path / "names.sock").stat().st_mode) == 0o600
        tell = teller(str(sink.path))
        a = Seen(PEER, SERVER, "tls", "a.test")
        for seen in (a, a, Seen(PEER, SERVER, "http", "b.test")):
            tell(seen)
        deadline = time.monotonic() + 5
        while sum(sink._counts.values()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.drain() == {a: 2, Seen(PEER, SERVER, "http", "b.test"): 1}
        assert sink.drain() == {}
        for n in range(10):  # a peer naming a thousand servers: bounded
            sink.add(Seen(PEER, SERVER, "tls", f"n{n}.test"))
        assert len(sink.drain()) == 3 and sink.dropped == 7
    finally:
        sink.stop()
    assert not (tmp_path / "names.sock").exists()
    teller(str(tmp_path / "names.sock"))(a)  # nobody listening: lost, no error


class Names:
    def __init__(self) -> None:
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")

    def drain(self) -> dict[Seen, int]:
        return {Seen(PEER, SERVER, "tls", "a.test"): 1}


def test_keeping_names_runs_the_reader_with_its_sink_and_stops_both() -> None:
    reader, names = Reader(), Names()
    control = ClassifierControl("auto", 9, reader, lambda _: None, lambda: None, names)
    control.armed = True
    assert control.drain_names() == {}  # not running: nothing to drain
    control(_state(()))  # no peer blocks anything: names alone ask for classification
    assert (reader.events, names.events) == (["start"], ["start"])
    assert control.drain_names() == {Seen(PEER, SERVER, "tls", "a.test"): 1}
    control.close()
    assert (reader.events, names.events) == (["start", "stop"], ["start", "stop"])

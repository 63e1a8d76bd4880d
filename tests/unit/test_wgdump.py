"""Parsing `wg show all dump` (layout as wireguard-tools v1.0.20210914 prints it)."""

from __future__ import annotations

from wirewarden.domain.state import PeerState, PeerStats
from wirewarden.domain.wgdump import parse_all_dump

PRIV0 = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
PUB0 = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
A = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
B = "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA="
C = "kG7wPfuWF5o2C2bEjTwgJZ0UbKP3vxQwFoOxXEXGRDo="
PSK = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="
ENDPOINT_A = "203.0.113.7:41234"
ALLOWED_A = "10.8.0.2/32,fd00:8::2/128"


def dump(*rows: tuple[str, ...]) -> str:
    """Lines of tab-separated fields, as `wg` prints them."""
    return "".join("\t".join(row) + "\n" for row in rows)


TEXT = dump(
    ("wg0", PRIV0, PUB0, "51820", "off"),
    ("wg0", A, PSK, ENDPOINT_A, ALLOWED_A, "1700000000", "1024", "2048", "25"),
    ("wg0", B, "(none)", "(none)", "10.8.0.3/32", "0", "0", "0", "off"),
    ("wg0", C, "(none)", "[2001:db8::7]:51000", "(none)", "1700000100", "5", "6", "off"),
    ("wg1", "(none)", "(none)", "0", "off"),
)


def test_two_interfaces() -> None:
    devices = parse_all_dump(TEXT)
    assert set(devices) == {"wg0", "wg1"}
    assert devices["wg0"].private_key == PRIV0
    assert devices["wg0"].listen_port == 51820
    # An interface without a key or port (just created) shows "(none)" and 0.
    assert devices["wg1"].private_key is None
    assert devices["wg1"].listen_port is None
    assert devices["wg1"].peers == {}
    assert devices["wg1"].stats == {}


def test_peer_settings() -> None:
    peers = parse_all_dump(TEXT)["wg0"].peers
    assert peers == {
        A: PeerState(A, ("10.8.0.2/32", "fd00:8::2/128"), PSK, 25),
        B: PeerState(B, ("10.8.0.3/32",), None, None),
        C: PeerState(C, (), None, None),
    }


def test_peer_stats() -> None:
    stats = parse_all_dump(TEXT)["wg0"].stats
    assert stats == {
        A: PeerStats("203.0.113.7:41234", 1700000000, 1024, 2048),
        B: PeerStats(None, 0, 0, 0),
        C: PeerStats("[2001:db8::7]:51000", 1700000100, 5, 6),
    }


def test_empty_output_and_blank_lines() -> None:
    assert parse_all_dump("") == {}
    devices = parse_all_dump("\n" + dump(("wg2", PRIV0, PUB0, "51822", "off")) + "\n")
    assert set(devices) == {"wg2"}


def test_peer_line_of_an_unknown_interface_is_ignored() -> None:
    text = dump(("wg9", A, "(none)", "(none)", "10.8.0.2/32", "0", "0", "0", "off"))
    assert parse_all_dump(text) == {}

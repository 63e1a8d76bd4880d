"""UAPI messages: what wireguard-go reads on its socket for peer changes."""

from __future__ import annotations

import base64

from wirewarden.domain.state import PeerState
from wirewarden.domain.uapi import ZERO_KEY, errno_of, remove_peers, set_peers, set_peers_chunks

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes([7]) * 32).decode()


def test_set_peers_replaces_allowed_ips_and_states_every_field() -> None:
    peer = PeerState(KEY_A, ("10.8.0.2/32", "fd00::2/128"), preshared_key=KEY_B)
    assert set_peers([peer]).split("\n") == [
        "set=1",
        f"public_key={bytes(range(32)).hex()}",
        f"preshared_key={'07' * 32}",
        "persistent_keepalive_interval=0",
        "replace_allowed_ips=true",
        "allowed_ip=10.8.0.2/32",
        "allowed_ip=fd00::2/128",
        "",  # a blank line ends the message
        "",
    ]


def test_no_preshared_key_clears_it_and_keepalive_is_kept() -> None:
    text = set_peers([PeerState(KEY_A, ("10.8.0.2/32",), persistent_keepalive=25)])
    assert f"preshared_key={ZERO_KEY}" in text
    assert "persistent_keepalive_interval=25" in text


def test_remove_peers_lists_each_key() -> None:
    assert remove_peers([KEY_A, KEY_B]).split("\n") == [
        "set=1",
        f"public_key={bytes(range(32)).hex()}",
        "remove=true",
        f"public_key={'07' * 32}",
        "remove=true",
        "",
        "",
    ]


def test_errno_of_replies() -> None:
    assert errno_of("errno=0\n\n") == 0
    assert errno_of("errno=-22\n\n") == -22
    assert errno_of("") == -1
    assert errno_of("errno=x\n\n") == -1


def test_set_peers_in_pieces_is_the_same_message() -> None:
    peers = [
        PeerState(key, (f"10.8.0.{i}/32", f"fd00::{i}/128"), persistent_keepalive=i)
        for i, key in enumerate([KEY_A, KEY_B] * 3, start=2)
    ]
    whole = set_peers(peers)
    for size in (1, 5, 6, 7, 1000):
        pieces = list(set_peers_chunks(peers, size))
        assert "".join(pieces) == whole
        assert whole.endswith("\n\n") and not whole.endswith("\n\n\n")
    assert len(list(set_peers_chunks(peers, 6))) == 7  # 6 peers of 6 lines, then the end

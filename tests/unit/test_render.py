"""Renderers (client and server configs, the nftables table), QR codes and keys."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from wirewarden.domain.keys import (
    InvalidKeyError,
    generate_keypair,
    generate_preshared_key,
    parse_key,
    public_key_of,
)
from wirewarden.domain.qr import config_qr_svg
from wirewarden.domain.render import (
    ClientConfig,
    client_config,
    nft_ruleset,
    server_config,
    wg_peers_conf,
)
from wirewarden.domain.state import InterfaceState, NatNetwork, PeerState

PRIV = "cGVlci1wcml2YXRlLWtleS0zMi1ieXRlcy1sb25nISE="
SERVER_PUB = "c2VydmVyLXB1YmxpYy1rZXktMzItYnl0ZXMtbG9uZyE="
PSK = "cHJlc2hhcmVkLWtleS0zMi1ieXRlcy1sb25nLW9rISE="
PEER_A = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="
PEER_B = "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI="


# ---- client configs


def test_client_config_minimal() -> None:
    cfg = ClientConfig(
        private_key=PRIV,
        addresses=("10.8.0.2/32",),
        server_public_key=SERVER_PUB,
        endpoint="vpn.example.test:51820",
    )
    assert client_config(cfg) == (
        "[Interface]\n"
        f"PrivateKey = {PRIV}\n"
        "Address = 10.8.0.2/32\n"
        "\n"
        "[Peer]\n"
        f"PublicKey = {SERVER_PUB}\n"
        "Endpoint = vpn.example.test:51820\n"
        "AllowedIPs = 0.0.0.0/0, ::/0\n"
    )


def test_client_config_everything() -> None:
    cfg = ClientConfig(
        private_key=PRIV,
        addresses=("10.8.0.2/32", "fd00:8::2/128"),
        server_public_key=SERVER_PUB,
        endpoint="[2001:db8::1]:51821",
        allowed_ips=("10.8.0.0/24", "192.168.1.0/24"),
        preshared_key=PSK,
        dns=("10.8.0.1", "fd00:8::1"),
        mtu=1380,
        persistent_keepalive=25,
        name="laptop",
    )
    assert client_config(cfg) == (
        "# laptop\n"
        "[Interface]\n"
        f"PrivateKey = {PRIV}\n"
        "Address = 10.8.0.2/32, fd00:8::2/128\n"
        "DNS = 10.8.0.1, fd00:8::1\n"
        "MTU = 1380\n"
        "\n"
        "[Peer]\n"
        f"PublicKey = {SERVER_PUB}\n"
        f"PresharedKey = {PSK}\n"
        "Endpoint = [2001:db8::1]:51821\n"
        "AllowedIPs = 10.8.0.0/24, 192.168.1.0/24\n"
        "PersistentKeepalive = 25\n"
    )


@pytest.mark.parametrize(
    ("overrides", "absent"),
    [
        ({"dns": ()}, "DNS"),
        ({"mtu": None}, "MTU"),
        ({"preshared_key": None}, "PresharedKey"),
        ({"preshared_key": ""}, "PresharedKey"),
        ({"persistent_keepalive": None}, "PersistentKeepalive"),
        ({"persistent_keepalive": 0}, "PersistentKeepalive"),
        ({"name": None}, "#"),
    ],
)
def test_client_config_leaves_out_unset_lines(overrides: dict[str, object], absent: str) -> None:
    fields: dict[str, object] = {
        "private_key": PRIV,
        "addresses": ("10.8.0.2/32",),
        "server_public_key": SERVER_PUB,
        "endpoint": "vpn.example.test:51820",
        "preshared_key": PSK,
        "dns": ("1.1.1.1",),
        "mtu": 1280,
        "persistent_keepalive": 25,
        "name": "phone",
    }
    text = client_config(ClientConfig(**{**fields, **overrides}))  # type: ignore[arg-type]
    assert not any(line.startswith(absent) for line in text.splitlines())
    assert "[Interface]" in text
    assert "AllowedIPs = 0.0.0.0/0, ::/0" in text


# ---- server side


def _iface(peers: dict[str, PeerState]) -> InterfaceState:
    return InterfaceState(
        name="wg0",
        private_key=PRIV,
        listen_port=51820,
        addresses=("10.8.0.1/24", "fd00:8::1/64"),
        mtu=1420,
        peers=peers,
    )


PEER_A_STATE = PeerState(PEER_A, ("10.8.0.2/32", "fd00:8::2/128"), PSK, 25)
PEER_B_STATE = PeerState(PEER_B, ("10.8.0.3/32", "192.168.50.0/24"))


def test_server_config_sorted_peers_with_names() -> None:
    iface = _iface({PEER_B: PEER_B_STATE, PEER_A: PEER_A_STATE})
    assert server_config(iface, {PEER_A: "laptop"}) == (
        "[Interface]\n"
        f"PrivateKey = {PRIV}\n"
        "Address = 10.8.0.1/24, fd00:8::1/64\n"
        "ListenPort = 51820\n"
        "MTU = 1420\n"
        "\n"
        "# Name = laptop\n"
        "[Peer]\n"
        f"PublicKey = {PEER_A}\n"
        f"PresharedKey = {PSK}\n"
        "AllowedIPs = 10.8.0.2/32, fd00:8::2/128\n"
        "PersistentKeepalive = 25\n"
        "\n"
        "[Peer]\n"
        f"PublicKey = {PEER_B}\n"
        "AllowedIPs = 10.8.0.3/32, 192.168.50.0/24\n"
    )


def test_server_config_without_peers() -> None:
    text = server_config(_iface({}))
    assert text.endswith("MTU = 1420\n")
    assert "[Peer]" not in text


def test_wg_peers_conf() -> None:
    assert wg_peers_conf([PEER_A_STATE, PEER_B_STATE]) == (
        "[Peer]\n"
        f"PublicKey = {PEER_A}\n"
        f"PresharedKey = {PSK}\n"
        "AllowedIPs = 10.8.0.2/32, fd00:8::2/128\n"
        "PersistentKeepalive = 25\n"
        "[Peer]\n"
        f"PublicKey = {PEER_B}\n"
        "AllowedIPs = 10.8.0.3/32, 192.168.50.0/24\n"
    )


# ---- nftables


NETS = (
    NatNetwork("wg0", "10.8.0.0/24"),
    NatNetwork("wg0", "fd00:8::/64"),
    NatNetwork("wg1", "10.9.0.0/24"),
)


def _rules(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines()]


def test_nft_ruleset_masquerades_each_network_out_of_the_uplink() -> None:
    script, digest = nft_ruleset(NETS, "eth0")
    rules = _rules(script)
    assert rules[:3] == [
        "table inet wirewarden",
        "delete table inet wirewarden",
        "table inet wirewarden {",
    ]
    assert f'comment "wirewarden {digest}"' in rules
    # One rule per family over the set of our networks, whatever their number.
    assert 'ip saddr @vpn4 oifname "eth0" masquerade' in rules
    assert 'ip6 saddr @vpn6 oifname "eth0" masquerade' in rules
    assert sum("saddr @vpn" in r and "masquerade" in r for r in rules) == 2
    assert (
        "set vpn4 { type ipv4_addr; flags interval; elements = { 10.8.0.0/24, 10.9.0.0/24 }; }"
        in rules
    )
    assert "set vpn6 { type ipv6_addr; flags interval; elements = { fd00:8::/64 }; }" in rules
    assert 'set ww_ifaces { type ifname; elements = { "wg0", "wg1" }; }' in rules
    assert "iifname @ww_ifaces accept" in rules


def test_nft_ruleset_without_uplink_masquerades_out_of_anything_but_the_tunnels() -> None:
    rules = _rules(nft_ruleset(NETS, None)[0])
    assert "ip saddr @vpn4 oifname != @ww_ifaces masquerade" in rules
    assert "ip6 saddr @vpn6 oifname != @ww_ifaces masquerade" in rules


def test_nft_digest_is_stable_and_names_no_interface_or_network() -> None:
    """The skeleton follows the uplink only: a new interface or tenant changes elements,
    never the rules (so it never rewrites the table under the others)."""
    _, digest = nft_ruleset(NETS, "eth0")
    assert len(digest) == 16
    assert nft_ruleset(tuple(reversed(NETS)) + NETS[:1], "eth0")[1] == digest
    assert nft_ruleset((*NETS, NatNetwork("wg2", "10.10.0.0/24")), "eth0")[1] == digest
    assert nft_ruleset((), "eth0")[1] == digest
    others = {nft_ruleset(NETS, "eth1")[1], nft_ruleset(NETS, None)[1]}
    assert digest not in others
    assert len(others) == 2


def test_nft_empty_ruleset_still_has_the_chains() -> None:
    script, _ = nft_ruleset((), None)
    assert "chain forward {" in script
    assert "chain postrouting {" in script
    assert "elements" not in script.split("chain")[0].split("set private4")[0]


@pytest.mark.parametrize("uplink", ["eth0", None])
def test_nft_ruleset_parses_with_nft(uplink: str | None, tmp_path: Path) -> None:
    """`nft -c` (check only) in a throwaway network namespace accepts the script."""
    if shutil.which("nft") is None or shutil.which("unshare") is None:
        pytest.skip("nft or unshare not installed")
    probe = subprocess.run(
        ["unshare", "--net", "true"], capture_output=True, timeout=10, check=False
    )
    if probe.returncode != 0:
        pytest.skip("cannot create a network namespace (needs root)")
    path = tmp_path / "ruleset.nft"
    path.write_text(nft_ruleset(NETS, uplink)[0])
    result = subprocess.run(
        ["unshare", "--net", "nft", "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# ---- QR


def test_qr_is_an_svg() -> None:
    svg = config_qr_svg("[Interface]\nPrivateKey = x\n" * 8)
    assert svg.lstrip().startswith("<svg")
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert svg.rstrip().endswith("</svg>")
    assert config_qr_svg("a") != config_qr_svg("b")


# ---- keys


def test_generated_keypair_agrees_with_public_key_of() -> None:
    pair = generate_keypair()
    assert public_key_of(pair.private_key) == pair.public_key
    assert len(base64.b64decode(pair.private_key)) == 32
    assert len(base64.b64decode(pair.public_key)) == 32
    assert generate_keypair() != pair


def test_preshared_key_is_32_bytes_and_random() -> None:
    psk = generate_preshared_key()
    assert parse_key(psk) == psk
    assert generate_preshared_key() != psk


def test_parse_key_accepts_canonical_and_surrounding_space() -> None:
    key = generate_keypair().public_key
    assert parse_key(key) == key
    assert parse_key(f"  {key}\n") == key


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not a key",
        base64.b64encode(b"x" * 31).decode(),
        base64.b64encode(b"x" * 33).decode(),
        "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE",  # padding missing
        "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh$WE=",
        "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=; rm -rf /",
    ],
)
def test_parse_key_refuses(value: str) -> None:
    with pytest.raises(InvalidKeyError):
        parse_key(value)


def test_public_key_of_refuses_garbage() -> None:
    with pytest.raises(InvalidKeyError):
        public_key_of("garbage")


def test_public_key_matches_wg_pubkey() -> None:
    wg = shutil.which("wg")
    if wg is None:
        pytest.skip("wg (wireguard-tools) is not installed")
    for _ in range(3):
        pair = generate_keypair()
        result = subprocess.run(
            [wg, "pubkey"],
            input=pair.private_key + "\n",
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        assert result.stdout.strip() == pair.public_key
    # And the other way round: a key from `wg genkey` gives the same public key here.
    private = subprocess.run(
        [wg, "genkey"], capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()
    expected = subprocess.run(
        [wg, "pubkey"], input=private + "\n", capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()
    assert public_key_of(private) == expected

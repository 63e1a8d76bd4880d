"""Pure renderers: client and server configs in wg-quick form, the nftables table."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wirewarden.domain import firewall
from wirewarden.domain.keys import InvalidKeyError, parse_key
from wirewarden.domain.state import InterfaceState, NatNetwork, PeerState

FULL_TUNNEL = ("0.0.0.0/0", "::/0")
TABLE = firewall.TABLE


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client `.conf` holds."""

    private_key: str
    addresses: tuple[str, ...]
    server_public_key: str
    endpoint: str
    allowed_ips: tuple[str, ...] = FULL_TUNNEL
    preshared_key: str | None = None
    dns: tuple[str, ...] = ()
    mtu: int | None = None
    persistent_keepalive: int | None = None
    name: str | None = None


class UnsafeValue(ValueError):
    """A value that would change a config's meaning: never written, whatever validated it."""


# wg-quick splits a line at '#' (comment) and '=' (key), and runs PreUp/PostUp lines as
# root: a value holding a line break, a '#' or an '=' could add a key of its own. Keys
# (base64, ending in '=') are checked as keys instead.
_UNSAFE = frozenset("\n\r#=\x00\x0b\x0c\x85\u2028\u2029")
_KEYS = frozenset({"PrivateKey", "PublicKey", "PresharedKey"})


def _kv(key: str, value: object) -> str:
    text = str(value)
    if key in _KEYS:
        if not _is_key(text):
            raise UnsafeValue(f"{key} is not a WireGuard key")
    elif any(c in _UNSAFE for c in text) or not text.isprintable():
        raise UnsafeValue(f"{key} holds characters a config line may not: {text[:80]!r}")
    return f"{key} = {text}"


def _is_key(text: str) -> bool:
    try:
        return parse_key(text) == text
    except InvalidKeyError:
        return False


def _comment(text: str) -> str:
    if not text.isprintable():
        raise UnsafeValue(f"a comment holds characters a config line may not: {text[:80]!r}")
    return f"# {text}"


def _line(key: str, value: object | None) -> list[str]:
    return [] if value is None or value == "" else [_kv(key, value)]


def _join(values: Iterable[str]) -> str:
    return ", ".join(values)


def client_config(cfg: ClientConfig) -> str:
    lines = [_comment(cfg.name)] if cfg.name else []
    lines += ["[Interface]", *_line("PrivateKey", cfg.private_key)]
    lines += _line("Address", _join(cfg.addresses))
    lines += _line("DNS", _join(cfg.dns))
    lines += _line("MTU", cfg.mtu)
    lines += ["", "[Peer]", *_line("PublicKey", cfg.server_public_key)]
    lines += _line("PresharedKey", cfg.preshared_key)
    lines += _line("Endpoint", cfg.endpoint) + _line("AllowedIPs", _join(cfg.allowed_ips))
    lines += _line("PersistentKeepalive", cfg.persistent_keepalive or None)
    return "\n".join(lines) + "\n"


def server_config(iface: InterfaceState, peer_names: dict[str, str] | None = None) -> str:
    """The interface in wg-quick form, for export or for `wg syncconf` comparisons."""
    names = peer_names or {}
    lines = ["[Interface]", *_line("PrivateKey", iface.private_key)]
    lines += _line("Address", _join(iface.addresses)) + _line("ListenPort", iface.listen_port)
    lines += _line("MTU", iface.mtu)
    for key in sorted(iface.peers):
        lines.append("")
        if key in names:
            lines.append(_comment(f"Name = {names[key]}"))
        lines += wg_peer_section(iface.peers[key])
    return "\n".join(lines) + "\n"


def wg_peer_section(peer: PeerState) -> list[str]:
    lines = ["[Peer]", *_line("PublicKey", peer.public_key)]
    lines += _line("PresharedKey", peer.preshared_key)
    lines += _line("AllowedIPs", _join(peer.allowed_ips))
    lines += _line("PersistentKeepalive", peer.persistent_keepalive or None)
    return lines


def wg_peers_conf(peers: Iterable[PeerState]) -> str:
    """[Peer] sections only, as `wg addconf` takes them (AllowedIPs replaced per peer)."""
    out: list[str] = []
    for peer in peers:
        out += wg_peer_section(peer)
    return "\n".join(out) + "\n"


def nft_ruleset(nat: Iterable[NatNetwork], uplink: str | None) -> tuple[str, str]:
    """The whole-table transaction for `nft -f` and its digest, without per-peer policy.

    The table is declared, deleted and recreated in one transaction, so the kernel swaps
    it atomically; the digest is stored as the table comment so the reconciler can tell
    whether the kernel holds what it would write (see domain/firewall.py).
    """
    rs = firewall.ruleset(nat, uplink)
    return firewall.full_script(rs), rs.skeleton_digest

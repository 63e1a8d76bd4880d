"""Pure renderers: client and server configs in wg-quick form, the nftables table."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from wirewarden.domain.state import InterfaceState, NatNetwork, PeerState

FULL_TUNNEL = ("0.0.0.0/0", "::/0")
TABLE = "wirewarden"


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


def _line(key: str, value: object | None) -> list[str]:
    return [] if value is None or value == "" else [f"{key} = {value}"]


def _join(values: Iterable[str]) -> str:
    return ", ".join(values)


def client_config(cfg: ClientConfig) -> str:
    lines = [f"# {cfg.name}"] if cfg.name else []
    lines += ["[Interface]", f"PrivateKey = {cfg.private_key}", f"Address = {_join(cfg.addresses)}"]
    lines += _line("DNS", _join(cfg.dns))
    lines += _line("MTU", cfg.mtu)
    lines += ["", "[Peer]", f"PublicKey = {cfg.server_public_key}"]
    lines += _line("PresharedKey", cfg.preshared_key)
    lines += [f"Endpoint = {cfg.endpoint}", f"AllowedIPs = {_join(cfg.allowed_ips)}"]
    lines += _line("PersistentKeepalive", cfg.persistent_keepalive or None)
    return "\n".join(lines) + "\n"


def server_config(iface: InterfaceState, peer_names: dict[str, str] | None = None) -> str:
    """The interface in wg-quick form, for export or for `wg syncconf` comparisons."""
    names = peer_names or {}
    lines = ["[Interface]", f"PrivateKey = {iface.private_key}"]
    lines += [f"Address = {_join(iface.addresses)}", f"ListenPort = {iface.listen_port}"]
    lines += [f"MTU = {iface.mtu}"]
    for key in sorted(iface.peers):
        lines.append("")
        if key in names:
            lines.append(f"# Name = {names[key]}")
        lines += wg_peer_section(iface.peers[key])
    return "\n".join(lines) + "\n"


def wg_peer_section(peer: PeerState) -> list[str]:
    lines = ["[Peer]", f"PublicKey = {peer.public_key}"]
    lines += _line("PresharedKey", peer.preshared_key)
    lines += [f"AllowedIPs = {_join(peer.allowed_ips)}"]
    lines += _line("PersistentKeepalive", peer.persistent_keepalive or None)
    return lines


def wg_peers_conf(peers: Iterable[PeerState]) -> str:
    """[Peer] sections only, as `wg addconf` takes them (AllowedIPs replaced per peer)."""
    out: list[str] = []
    for peer in peers:
        out += wg_peer_section(peer)
    return "\n".join(out) + "\n"


def _family(network: str) -> str:
    return "ip6" if ":" in network else "ip"


def nft_table_body(nat: Iterable[NatNetwork], uplink: str | None) -> str:
    """Forwarding and masquerade for the VPN networks, as the body of our table."""
    nets = sorted(set(nat), key=lambda n: (n.interface, n.network))
    ifaces = sorted({n.interface for n in nets})
    fwd = ["ct state established,related accept", "ct state invalid drop"]
    fwd += [f'iifname "{name}" accept' for name in ifaces]
    post = []
    for n in nets:
        out = f'oifname "{uplink}"' if uplink else f'oifname != "{n.interface}"'
        post.append(f"{_family(n.network)} saddr {n.network} {out} masquerade")
    return "\n".join(
        [
            "\tchain forward {",
            "\t\ttype filter hook forward priority filter; policy accept;",
            *(f"\t\t{rule}" for rule in fwd),
            "\t}",
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            *(f"\t\t{rule}" for rule in post),
            "\t}",
        ]
    )


def nft_ruleset(nat: Iterable[NatNetwork], uplink: str | None) -> tuple[str, str]:
    """The whole-table transaction for `nft -f` and its digest.

    The table is declared, deleted and recreated in one transaction, so the
    kernel swaps it atomically; the digest is stored as the table comment so
    the reconciler can tell whether the kernel holds what it would write.
    """
    body = nft_table_body(nat, uplink)
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    script = "\n".join(
        [
            f"table inet {TABLE}",
            f"delete table inet {TABLE}",
            f"table inet {TABLE} {{",
            f'\tcomment "wirewarden {digest}"',
            body,
            "}",
        ]
    )
    return script + "\n", digest

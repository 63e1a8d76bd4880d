"""What the DNS resolver serves: policies, who asks with which policy, where it listens."""

from __future__ import annotations

from dataclasses import dataclass, field

BLOCK_ANSWERS = ("nxdomain", "null-ip")
DEFAULT_POLICY = "default"


@dataclass(frozen=True)
class PolicySpec:
    """A DNS policy as stored: lists by source, rules as written."""

    name: str
    blocklists: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    block_answer: str = "nxdomain"
    anti_bypass: bool = True


@dataclass(frozen=True)
class Client:
    """A peer address the resolver may be asked from."""

    peer_id: int
    peer: str
    interface: str
    policy: str


@dataclass(frozen=True)
class DnsDirectory:
    """Everything the resolver needs from the database, read at one revision."""

    revision: int
    listen: tuple[str, ...]  # gateway addresses (no prefix) of the enabled interfaces
    networks: tuple[str, ...]  # VPN networks: unknown sources there get the default policy
    clients: dict[str, Client] = field(default_factory=dict)  # by tunnel address
    policies: dict[str, PolicySpec] = field(default_factory=dict)

    def blocklists(self) -> set[str]:
        return {src for p in self.policies.values() for src in p.blocklists}


@dataclass(frozen=True)
class DnsGuard:
    """The nftables part of anti-bypass: per interface, where port 53 goes."""

    gateways: dict[str, tuple[str, ...]]  # interface -> gateway addresses (v4 and/or v6)
    exempt: tuple[str, ...] = ()  # peer addresses whose policy turns anti-bypass off
    doh: tuple[str, ...] = ()  # known DoH endpoint addresses (v4 and v6)

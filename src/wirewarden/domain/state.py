"""Desired and observed data-plane state: plain values the reconciler diffs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from wirewarden.domain.dnsstate import DnsGuard
from wirewarden.domain.exposure import Forward
from wirewarden.domain.policy import PolicyState
from wirewarden.domain.vhost import NodeNames

if TYPE_CHECKING:
    from wirewarden.domain.firewall import ObservedFirewall
    from wirewarden.domain.tcplan import ObservedTc


@dataclass(frozen=True)
class PeerState:
    """A peer as the server's WireGuard interface sees it."""

    public_key: str
    allowed_ips: tuple[str, ...]
    preshared_key: str | None = None
    persistent_keepalive: int | None = None


@dataclass(frozen=True)
class InterfaceState:
    """One WireGuard interface: the link, its WireGuard settings and its peers."""

    name: str
    private_key: str
    listen_port: int
    addresses: tuple[str, ...]
    mtu: int
    peers: dict[str, PeerState] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservedLink:
    """What the kernel shows for a link, independently of WireGuard settings."""

    name: str
    up: bool
    mtu: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class ObservedInterface:
    link: ObservedLink
    private_key: str | None
    listen_port: int | None
    peers: dict[str, PeerState]


@dataclass(frozen=True)
class HostFootprint:
    """What of the host is not ours to take: read before an interface is made or changed."""

    # Networks of the addresses and routes (default routes aside) of links not ours.
    networks: tuple[str, ...] = ()
    # UDP ports some socket of the host holds (our own devices' ports left out).
    udp_ports: frozenset[int] = frozenset()
    # Links that exist and are not WireGuard devices (a WireGuard one can be adopted).
    links: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NatNetwork:
    """A VPN network whose traffic is forwarded and masqueraded out of the uplink."""

    interface: str
    network: str


@dataclass(frozen=True)
class DesiredState:
    interfaces: dict[str, InterfaceState]
    # Every interface we own, enabled or not: a disabled one present in the kernel is torn down.
    managed: frozenset[str]
    nat: tuple[NatNetwork, ...]
    uplink: str | None
    # The node's revision the state was read at; 0 where no store stands behind it.
    revision: int = 0
    policy: PolicyState = field(default_factory=PolicyState)
    # Port 53 redirection and DoT/DoH refusal for the peers (None: no DNS filtering).
    dns_guard: DnsGuard | None = None
    # Published ports (expose), and the public addresses they are reached at (empty: the
    # uplink's).
    forwards: tuple[Forward, ...] = ()
    expose_listen: tuple[str, ...] = ()
    # HTTP services by name of this node's peers (None: the control plane publishes none).
    names: NodeNames | None = None


@dataclass(frozen=True)
class ObservedState:
    interfaces: dict[str, ObservedInterface]
    firewall_digest: str | None
    forwarding: bool
    # Our table's per-peer elements and quotas (None: not looked at, as in the fake's default).
    firewall: ObservedFirewall | None = None
    # tc per WireGuard interface that has (or had) speed limits.
    tc: dict[str, ObservedTc] = field(default_factory=dict)
    # Networks of links not ours: no address of an interface may overlap one.
    host_networks: tuple[str, ...] = ()
    # IFB devices of ours (by their name's pattern) present on the host, whatever their
    # interface: one left behind by a deleted interface is found here and removed.
    ifbs: frozenset[str] = frozenset()


class PeerStats(NamedTuple):
    """Runtime figures of a peer from the kernel (not configuration). A named tuple: a dump
    of 10,000 peers makes 10,000 of these every collection period, and tuples are the
    cheapest immutable value Python builds."""

    endpoint: str | None
    latest_handshake: int
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class DeviceDump:
    """One interface as `wg show all dump` prints it."""

    private_key: str | None
    listen_port: int | None
    peers: dict[str, PeerState]
    stats: dict[str, PeerStats]

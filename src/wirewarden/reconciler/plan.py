"""The pure planner: diff(desired, observed) -> actions."""

from __future__ import annotations

import ipaddress

from wirewarden.domain import addresses, firewall, tcplan
from wirewarden.domain.dnsnft import dns_section
from wirewarden.domain.policy import PeerPolicy
from wirewarden.domain.state import (
    DesiredState,
    InterfaceState,
    ObservedInterface,
    ObservedState,
    PeerState,
)
from wirewarden.reconciler.actions import (
    Action,
    ApplyFirewall,
    ApplyTc,
    ConfigureDevice,
    ConfigureLink,
    CreateInterface,
    EnableForwarding,
    Refuse,
    RemoveFirewall,
    RemoveIfb,
    RemoveInterface,
    RemovePeers,
    SetPeers,
    UpdateFirewall,
)


def normalize_peer(peer: PeerState) -> PeerState:
    """One spelling per peer, so desired and observed compare equal when they mean the same."""
    nets = sorted(str(ipaddress.ip_network(n, strict=False)) for n in peer.allowed_ips)
    return PeerState(
        public_key=peer.public_key,
        allowed_ips=tuple(nets),
        preshared_key=peer.preshared_key or None,
        persistent_keepalive=peer.persistent_keepalive or None,
    )


def _same_peer(have: PeerState, want: PeerState) -> bool:
    # Equal spellings mean equal peers; parse addresses only where the spellings differ,
    # which keeps a pass with nothing to do at 10k peers from parsing 20k addresses.
    return have == want or normalize_peer(have) == normalize_peer(want)


def _addresses(values: tuple[str, ...]) -> set[str]:
    return {str(ipaddress.ip_interface(v)) for v in values}


def diff(desired: DesiredState, observed: ObservedState) -> list[Action]:
    actions: list[Action] = []
    if not observed.forwarding and desired.interfaces:
        actions.append(EnableForwarding())
    for name in sorted(desired.managed - set(desired.interfaces)):
        if name in observed.interfaces:
            actions.append(RemoveInterface(name))
    for name in sorted(desired.interfaces):
        want, have = desired.interfaces[name], observed.interfaces.get(name)
        refused = refuse_on_host(want, have, observed.host_networks)
        actions += [refused] if refused else diff_interface(want, have)
    actions += diff_firewall(desired, observed)
    actions += diff_tc(desired, observed)
    return actions


def firewall_sections(desired: DesiredState) -> list[firewall.Section]:
    """Sections of other features (DNS ...) that go into our table after the policy ones."""
    return [dns_section(desired.dns_guard)] if desired.dns_guard else []


def diff_firewall(desired: DesiredState, observed: ObservedState) -> list[Action]:
    if not desired.interfaces:
        # Nothing left for the rules to serve (NAT, policy, DNS guard all hang off an
        # interface): an empty table of ours would only clutter `nft list tables`.
        return [RemoveFirewall()] if observed.firewall_digest is not None else []
    guard = desired.dns_guard
    rs = firewall.ruleset(
        desired.nat,
        desired.uplink,
        desired.policy,
        extra=firewall_sections(desired),
        dns=guard.gateways if guard else None,
        forwards=desired.forwards,
        listen=desired.expose_listen,
    )
    layer = rs.layer
    quotas = tuple(sorted(layer.quotas.items()))
    seen = observed.firewall
    if observed.firewall_digest != rs.skeleton_digest:
        script = firewall.full_script(rs, seen.quotas if seen else None)
        return [ApplyFirewall(script, rs.skeleton_digest, layer.elements, quotas)]
    if seen is None:
        return []
    script = firewall.delta_script(
        seen.elements, layer.elements, seen.quotas, layer.quotas, layer.floors
    )
    return [UpdateFirewall(script, layer.elements, quotas)] if script else []


def throttled(desired: DesiredState, observed: ObservedState) -> frozenset[int]:
    """Peers over their cap when the cap action is to throttle them."""
    if desired.policy.cap_action != "throttle" or observed.firewall is None:
        return frozenset()
    wanted = {p.quota_name for p in desired.policy.peers if p.quota_name}
    current = {k: v for k, v in observed.firewall.quotas.items() if k in wanted}
    return firewall.over_cap(current)


def diff_tc(desired: DesiredState, observed: ObservedState) -> list[Action]:
    slow = throttled(desired, observed)
    policy = desired.policy
    actions: list[Action] = []
    # Each interface's peers once, not a scan of every peer per interface (200 tenants).
    by_interface: dict[str, list[PeerPolicy]] = {}
    for peer in policy.peers:
        by_interface.setdefault(peer.interface, []).append(peer)
    for name in sorted(desired.interfaces):
        mine = by_interface.get(name, [])
        down, up = tcplan.wanted(mine, name, slow, policy.throttle_kbit)
        have = observed.tc.get(name, tcplan.ObservedTc())
        changes = tcplan.plan(name, down, up, have, policy.leaf_qdisc)
        if not changes.empty:
            actions.append(ApplyTc(name, changes, down, up))
    # An IFB whose interface is no longer wanted: the interface's own plan can't see it
    # (there is no interface to plan for), so it is removed by name.
    kept = {tcplan.ifb_name(name) for name in desired.interfaces}
    actions += [RemoveIfb(dev) for dev in sorted(observed.ifbs - kept)]
    return actions


def refuse_on_host(
    want: InterfaceState, have: ObservedInterface | None, host_networks: tuple[str, ...]
) -> Refuse | None:
    """Refuse to add an address that overlaps a network of the host's own links: applied,
    it would take the host's gateway or LAN (checked at create too; the host may change)."""
    present = _addresses(have.link.addresses) if have else set()
    for address in sorted(_addresses(want.addresses) - present):
        clash = addresses.host_clash(ipaddress.ip_interface(address).network, host_networks)
        if clash:
            return Refuse(want.name, f"{address} overlaps {clash}, a network of this host")
    return None


def diff_interface(want: InterfaceState, have: ObservedInterface | None) -> list[Action]:
    if have is None:
        return [
            CreateInterface(want.name),
            ConfigureDevice(want.name, want.private_key, want.listen_port),
            ConfigureLink(want.name, want.mtu, tuple(sorted(_addresses(want.addresses))), (), True),
            *diff_peers(want, {}),
        ]
    actions: list[Action] = []
    if (have.private_key, have.listen_port) != (want.private_key, want.listen_port):
        actions.append(ConfigureDevice(want.name, want.private_key, want.listen_port))
    link = diff_link(want, have)
    if link is not None:
        actions.append(link)
    return actions + diff_peers(want, have.peers)


def diff_link(want: InterfaceState, have: ObservedInterface) -> ConfigureLink | None:
    wanted, present = _addresses(want.addresses), _addresses(have.link.addresses)
    # Link-local IPv6 addresses are the kernel's own; they are never ours to remove.
    present = {a for a in present if not ipaddress.ip_interface(a).ip.is_link_local}
    mtu = want.mtu if have.link.mtu != want.mtu else None
    add, remove = tuple(sorted(wanted - present)), tuple(sorted(present - wanted))
    if mtu is None and not add and not remove and have.link.up:
        return None
    return ConfigureLink(want.name, mtu, add, remove, not have.link.up)


def diff_peers(want: InterfaceState, have: dict[str, PeerState]) -> list[Action]:
    actions: list[Action] = []
    changed = tuple(
        peer
        for key, peer in sorted(want.peers.items())
        if key not in have or not _same_peer(have[key], peer)
    )
    zombies = tuple(sorted(set(have) - set(want.peers)))
    if zombies:
        actions.append(RemovePeers(want.name, zombies))
    if changed:
        actions.append(SetPeers(want.name, changed))
    return actions

"""Our nftables table `inet wirewarden`, composed from sections, as pure text.

The table has two layers:
- the skeleton: base chains, profile chains, static sets (LANs, DNS exemptions) and the
  declarations of the element-managed sets and maps. Its digest is kept in the table
  comment; when it differs from what we would write, the whole table is rewritten in one
  `nft -f` transaction that deletes and recreates it (atomic: no packet sees a half table).
  It names no interface, network or peer: 2 tenants or 200, the same rules.
- elements: per peer (ACL verdict maps, mesh sets, quota maps, with quota objects) and per
  interface (our interfaces, their gateways and networks, which gateways each interface may
  reach: the walls between tenants). They are compared element by element and changed with
  `add/delete element`, so one peer's or one tenant's change never rewrites the table, and
  a packet costs the same set lookups at 10,000 peers or 200 tenants as at 10 or 2.

Each feature contributes a `Section` (declarations + rules for the base chains, or for the
from_peer / to_peer / peer_input chains the base chains jump to for traffic of our
interfaces) from its own pure function; `compose` puts them in order. Other features (DNS)
pass their sections in.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from wirewarden.domain.classify.steering import CLASS_MASK, DECIDED, MARK_MASK, mark_of
from wirewarden.domain.classify.verdict import APPS
from wirewarden.domain.exposure import Forward
from wirewarden.domain.policy import (
    FULL,
    INTERNET_ONLY,
    INTRANET_ONLY,
    PRIVATE_V4,
    PRIVATE_V6,
    AclRule,
    PeerPolicy,
    PolicyState,
    Profile,
)
from wirewarden.domain.state import NatNetwork

TABLE = "wirewarden"
IFACES = "ww_ifaces"
META = "ww_meta"
# Between conntrack (-200) and the classifier's queue rule in iptables' mangle (-150):
# a mark set here is seen by the queue rule, which lets a decided flow pass unqueued.
RECALL = "recall"
BASE_CHAINS = {
    RECALL: "type filter hook prerouting priority -160; policy accept;",
    "prerouting": "type nat hook prerouting priority dstnat; policy accept;",
    "input": "type filter hook input priority filter; policy accept;",
    "forward": "type filter hook forward priority filter; policy accept;",
    "postrouting": "type nat hook postrouting priority srcnat; policy accept;",
}
# Regular chains for traffic from, to and at the gateway from our interfaces: a base chain
# jumps there after one interface-set lookup, so the per-peer rules need no check of their own.
FROM_PEER, TO_PEER, PEER_INPUT = "from_peer", "to_peer", "peer_input"
PEER_CHAINS = {
    PEER_INPUT: ("input", "iifname"),
    FROM_PEER: ("forward", "iifname"),
    TO_PEER: ("forward", "oifname"),
}
_FAMILIES = (("ip", "4"), ("ip6", "6"))
# The per-peer sets and maps whose elements are managed one by one.
PEER_SETS = {
    "acl4": "type ipv4_addr : verdict;",
    "acl6": "type ipv6_addr : verdict;",
    "mesh4": "type ifname . ipv4_addr;",
    "mesh6": "type ifname . ipv6_addr;",
    "quota4": "type ipv4_addr : quota;",
    "quota6": "type ipv6_addr : quota;",
    # A peer's address and the conntrack mark of a class it may not use (classify).
    "block4": "type ipv4_addr . mark;",
    "block6": "type ipv6_addr . mark;",
}
SAME_IF = "same_if"
# The per-interface ones: adding or removing an interface (a tenant) changes elements only.
INTERFACE_SETS = {
    IFACES: "type ifname;",
    SAME_IF: "type ifname . ifname;",  # "wg0" . "wg0": a packet stays on its interface
    "gw4": "type ipv4_addr;",  # every gateway address of ours
    "gw6": "type ipv6_addr;",
    "gw_own4": "type ifname . ipv4_addr;",  # the gateways an interface's peers may reach
    "gw_own6": "type ifname . ipv6_addr;",
    "vpn4": "type ipv4_addr; flags interval;",  # our interfaces' networks
    "vpn6": "type ipv6_addr; flags interval;",
    "dns4": "type ifname : ipv4_addr;",  # where port 53 from an interface is sent
    "dns6": "type ifname : ipv6_addr;",
    # Expose: a public port -> a peer's tunnel address and port, and the peers whose
    # client routes only the VPN (their replies need the gateway as source).
    "expose_tcp": "type inet_service : ipv4_addr . inet_service;",
    "expose_udp": "type inet_service : ipv4_addr . inet_service;",
    "expose_snat4": "type ipv4_addr;",
}
MANAGED_SETS = {**PEER_SETS, **INTERFACE_SETS}


@dataclass(frozen=True)
class Section:
    """One feature's part of the table: declarations and rules for the base chains."""

    name: str
    declarations: tuple[str, ...] = ()
    rules: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, order=True)
class Element:
    """One element of a per-peer set or map, in nft's own spelling."""

    set: str
    key: str
    value: str | None = None

    def text(self) -> str:
        return self.key if self.value is None else f"{self.key} : {self.value}"


@dataclass(frozen=True)
class Quota:
    name: str
    limit: int
    used: int = 0

    def declaration(self) -> str:
        return f"over {self.limit} bytes used {self.used} bytes"


@dataclass(frozen=True)
class PeerLayer:
    """The per-peer layer: set elements and quota objects."""

    elements: frozenset[Element] = frozenset()
    quotas: Mapping[str, int] = field(default_factory=dict)  # name -> limit in bytes
    floors: Mapping[str, int] = field(default_factory=dict)  # name -> bytes already used


@dataclass(frozen=True)
class ObservedFirewall:
    digest: str | None
    elements: frozenset[Element] = frozenset()
    quotas: Mapping[str, Quota] = field(default_factory=dict)


@dataclass(frozen=True)
class Ruleset:
    skeleton_digest: str
    skeleton: str  # the table body without per-peer elements
    layer: PeerLayer


# ---------------------------------------------------------------- helpers


def _elements(values: Iterable[str]) -> str:
    items = sorted(set(values))
    return f" elements = {{ {', '.join(items)} }};" if items else ""


def _set(name: str, kind: str, values: Iterable[str], interval: bool = False) -> str:
    flags = " flags interval;" if interval else ""
    return f"set {name} {{ type {kind};{flags}{_elements(values)} }}"


def _chain(name: str, rules: Iterable[str], head: str | None = None) -> str:
    lines = [f"\tchain {name} {{"]
    if head:
        lines.append(f"\t\t{head}")
    lines += [f"\t\t{rule}" for rule in rules]
    lines.append("\t}")
    return "\n".join(lines)


def acl_chain(profile: str) -> str:
    return f"acl_{profile}"


# ---------------------------------------------------------------- sections


def gateway_section() -> Section:
    """The gateways of a peer's own tenant (DNS, the API) stay reachable under every profile
    and cap; another tenant's gateways never are (the tenant walls, on the host itself)."""
    rules = (
        "iifname . ip daddr @gw_own4 accept",
        "iifname . ip6 daddr @gw_own6 accept",
        "ip daddr @gw4 drop",
        "ip6 daddr @gw6 drop",
    )
    return Section("gateway", (), {PEER_INPUT: rules})


def caps_section(policy: PolicyState) -> Section:
    """Named quotas count both directions of a capped peer; over the cap it is dropped."""
    verdict = " drop" if policy.cap_action == "block" else ""
    out = tuple(f"quota name {fam} saddr map @quota{n}{verdict}" for fam, n in _FAMILIES)
    back = tuple(f"quota name {fam} daddr map @quota{n}{verdict}" for fam, n in _FAMILIES)
    rules = {FROM_PEER: out, TO_PEER: back, PEER_INPUT: out if verdict else ()}
    return Section("caps", (), rules)


def blocked_apps_section() -> Section:
    """Flows the classifier named as a class the peer may not use: TCP is reset, the
    rest dropped, both ways (the verdict is in the conntrack mark, docs/classify.md)."""
    out, back = [], []
    for fam, n in _FAMILIES:
        match = f"{fam} saddr . ct mark @block{n}"
        out += [f"{match} meta l4proto tcp reject with tcp reset", f"{match} drop"]
        back.append(f"{fam} daddr . ct mark @block{n} drop")
    return Section("blocked_apps", (), {FROM_PEER: tuple(out), TO_PEER: tuple(back)})


# BitTorrent peers a peer was seen talking to, as nDPI's cache keeps them: the remote's
# address and port. A new flow from the peer to one of them is BitTorrent from its first
# packet, whatever it looks like (an encrypted handshake, uTP), for a quarter of an hour
# after the last classified packet.
BT_RECALL_TIMEOUT = "15m"


def bt_recall_section() -> Section:
    """Remember where a peer's BitTorrent flows go; mark its new flows there as BitTorrent
    before the classifier would look at them (then blocked or counted as the class)."""
    bt = mark_of("bittorrent")
    keep = f"{~MARK_MASK & 0xFFFFFFFF:#010x}"
    decl, remember, recall = [], [], []
    for (fam, n), kind in zip(_FAMILIES, ("ipv4_addr", "ipv6_addr"), strict=True):
        decl.append(
            f"set bt_peers{n} {{ type {kind} . {kind} . inet_service; size {APP_COUNT_SIZE}; "
            f"flags dynamic,timeout; timeout {BT_RECALL_TIMEOUT}; }}"
        )
        key = f"{fam} saddr . {fam} daddr . th dport"
        remember.append(
            f"ct direction original ct mark and {MARK_MASK:#010x} == {bt:#010x} "
            f"meta l4proto {{ tcp, udp }} update @bt_peers{n} {{ {key} }}"
        )
        recall.append(
            f"iifname @{IFACES} ct state new meta l4proto {{ tcp, udp }} {key} @bt_peers{n} "
            f"ct mark set ct mark and {keep} or {bt:#010x}"
        )
    return Section("bt_recall", tuple(decl), {FROM_PEER: tuple(remember), RECALL: tuple(recall)})


# Bytes and packets by peer address and conntrack mark (its class), in dynamic sets the
# kernel fills as traffic flows: not managed element by element like the others, read
# live (`GET /peers/{id}/apps`), and started again when the table is written whole.
APP_COUNT_SETS = ("apps4", "apps6")
# Flows likewise: one packet counted per flow, the one that carried its verdict.
FLOW_COUNT_SETS = ("flows4", "flows6")
APP_COUNT_SIZE = 65535


@dataclass(frozen=True)
class AppCount:
    """What the kernel counted for one peer address and conntrack mark, both ways."""

    address: str
    mark: int
    packets: int
    bytes: int
    flows: int = 0


# Bytes and packets of published ports by protocol and the peer's address and port (a
# mapping's forward), both ways; elements idle for a day go (a mapping long gone).
EXPOSE_COUNT_SET = "expose_count4"
EXPOSE_COUNT_TIMEOUT = "1d"


@dataclass(frozen=True)
class ExposeCount:
    """What the kernel counted for one forward's target, both ways."""

    proto: str
    address: str
    port: int
    packets: int
    bytes: int


@dataclass(frozen=True)
class KernelCounts:
    """The kernel's own counters of our dynamic sets, read live."""

    apps: tuple[AppCount, ...] = ()
    exposed: tuple[ExposeCount, ...] = ()


def app_counts_section() -> Section:
    """Every packet of a classified flow counts for its peer and class, both ways; each
    flow once, by the packet that carried the classifier's verdict (its packet mark: the
    flow's later packets have only the conntrack mark) or, for a flow marked before it
    could be queued (a BitTorrent peer remembered), by its first packet."""
    decl = tuple(
        f"set {name}{n} {{ type {kind} . mark; size {APP_COUNT_SIZE}; flags dynamic; }}"
        for name in ("apps", "flows")
        for kind, n in (("ipv4_addr", "4"), ("ipv6_addr", "6"))
    )
    classified = f"ct mark and {CLASS_MASK:#010x} != 0"
    decided = f"{DECIDED:#010x}"
    out = tuple(
        f"{classified} update @apps{n} {{ {fam} saddr . ct mark counter }}" for fam, n in _FAMILIES
    ) + tuple(
        f"{first} update @flows{n} {{ {fam} saddr . ct mark counter }}"
        for first in (f"meta mark and {decided} != 0", f"ct state new ct mark and {decided} != 0")
        for fam, n in _FAMILIES
    )
    back = tuple(
        f"{classified} update @apps{n} {{ {fam} daddr . ct mark counter }}" for fam, n in _FAMILIES
    )
    return Section("app_counts", decl, {FROM_PEER: out, TO_PEER: back})


def isolation_section() -> Section:
    """Peers reach each other only on one interface and only when both have mesh on; a
    packet for one of our networks that would not leave by one of our interfaces (another
    tenant's, disabled or gone) is dropped rather than routed out of the uplink."""
    rules = [
        f"iifname . {fam} saddr @mesh{n} oifname . {fam} daddr @mesh{n} "
        f"iifname . oifname @{SAME_IF} accept"
        for fam, n in _FAMILIES
    ]
    decl = (_chain("isolation", [*rules, "drop"]),)
    jump = (f"oifname @{IFACES} jump isolation", "ip daddr @vpn4 drop", "ip6 daddr @vpn6 drop")
    return Section("isolation", decl, {FROM_PEER: jump})


def expose_section(uplink: str | None, listen: Sequence[str] = ()) -> Section:
    """Published ports: DNAT in the kernel from the public addresses (`listen`, else the
    uplink's, else any address of the host not on our interfaces) to the peer; the
    peer's replies pass its ACL; split-tunnel peers see the gateway as the source."""
    decl: tuple[str, ...] = ()
    if listen:
        v4 = [a for a in listen if ":" not in a]
        decl = (_set("expose_listen4", "ipv4_addr", v4),)
        where = "ip daddr @expose_listen4"
    elif uplink:
        where = f'iifname "{uplink}" fib daddr type local'
    else:
        where = f"iifname != @{IFACES} fib daddr type local"
    pre = tuple(f"{where} dnat ip to {p} dport map @expose_{p}" for p in ("tcp", "udp"))
    post = (f"oifname @{IFACES} ct status dnat ip daddr @expose_snat4 masquerade",)
    counts = (
        f"set {EXPOSE_COUNT_SET} {{ type inet_proto . ipv4_addr . inet_service; "
        f"size {APP_COUNT_SIZE}; flags dynamic,timeout; timeout {EXPOSE_COUNT_TIMEOUT}; }}"
    )

    def count(direction: str, addr: str, port: str) -> str:
        key = f"meta l4proto . ip {addr} . th {port}"
        update = f"update @{EXPOSE_COUNT_SET} {{ {key} counter }}"
        return f"ct direction {direction} ct status dnat {update}"

    to_peer = (count("original", "daddr", "dport"),)
    reply = (
        count("reply", "saddr", "sport"),
        "ct direction reply ct status dnat accept",
    )
    return Section(
        "expose",
        (*decl, counts),
        {"prerouting": pre, "postrouting": post, FROM_PEER: reply, TO_PEER: to_peer},
    )


def expose_elements(forwards: Iterable[Forward]) -> frozenset[Element]:
    out = {
        Element(f"expose_{f.proto}", str(f.remote_port), f"{f.address} . {f.local_port}")
        for f in forwards
    }
    out |= {Element("expose_snat4", f.address) for f in forwards if f.snat}
    return frozenset(out)


def acl_section(policy: PolicyState) -> Section:
    lan = policy.lan_networks or ()
    decl = [
        _set("private4", "ipv4_addr", PRIVATE_V4, interval=True),
        _set("private6", "ipv6_addr", PRIVATE_V6, interval=True),
        _set("lan4", "ipv4_addr", [n for n in lan if ":" not in n], interval=True),
        _set("lan6", "ipv6_addr", [n for n in lan if ":" in n], interval=True),
        _chain(
            acl_chain(INTERNET_ONLY),
            [
                "ip daddr @private4 drop",
                "ip daddr @lan4 drop",
                "ip6 daddr @private6 drop",
                "ip6 daddr @lan6 drop",
            ],
        ),
        _chain(
            acl_chain(INTRANET_ONLY), ["ip daddr @lan4 return", "ip6 daddr @lan6 return", "drop"]
        ),
    ]
    decl += [
        _chain(acl_chain(p.name), profile_rules(p)) for p in sorted(policy.profiles, key=_name)
    ]
    rules = ("ip saddr vmap @acl4", "ip6 saddr vmap @acl6")
    return Section("acl", tuple(decl), {PEER_INPUT: rules, FROM_PEER: rules})


def _name(profile: Profile) -> str:
    return profile.name


def profile_rules(profile: Profile) -> list[str]:
    """A custom profile's chain: its rules in order (allow returns to the caller), then default."""
    out = [_rule(rule) for rule in profile.rules]
    if profile.default == "deny":
        out.append("drop")
    return out


def _rule(rule: AclRule) -> str:
    fam = "ip6" if rule.family == 6 else "ip"
    parts = [
        f"meta nfproto ipv{rule.family}" if rule.cidr.endswith("/0") else f"{fam} daddr {rule.cidr}"
    ]
    if rule.proto == "icmp":
        parts.append("meta l4proto " + ("ipv6-icmp" if rule.family == 6 else "icmp"))
    elif rule.proto in ("tcp", "udp") and rule.port_from is not None:
        ports = str(rule.port_from)
        if rule.port_to is not None and rule.port_to != rule.port_from:
            ports += f"-{rule.port_to}"
        parts.append(f"{rule.proto} dport {ports}")
    elif rule.proto in ("tcp", "udp"):
        parts.append(f"meta l4proto {rule.proto}")
    parts.append("return" if rule.action == "allow" else "drop")
    return " ".join(parts)


def nat_section(uplink: str | None) -> Section:
    """Forwarding and masquerade for the VPN networks (the set vpn4/vpn6)."""
    fwd = (
        "ct state established,related accept",
        "ct state invalid drop",
        f"iifname @{IFACES} accept",
    )
    out = f'oifname "{uplink}"' if uplink else f"oifname != @{IFACES}"
    post = tuple(f"{fam} saddr @vpn{n} {out} masquerade" for fam, n in _FAMILIES)
    return Section("nat", (), {"forward": fwd, "postrouting": post})


def policy_sections(
    policy: PolicyState, uplink: str | None = None, listen: Sequence[str] = ()
) -> list[Section]:
    return [
        gateway_section(),
        caps_section(policy),
        bt_recall_section(),
        blocked_apps_section(),
        app_counts_section(),
        isolation_section(),
        expose_section(uplink, listen),
        acl_section(policy),
    ]


# ---------------------------------------------------------------- composing


def _declaration(name: str, kind: str, elements: str = "") -> str:
    return f"\t{'map' if ' : ' in kind else 'set'} {name} {{ {kind}{elements} }}"


def compose(sections: Sequence[Section]) -> str:
    """The table body (skeleton) from sections, in section order within each base chain."""
    decl = [_declaration(name, kind) for name, kind in MANAGED_SETS.items()]
    for section in sections:
        decl += [d if d.startswith("\t") else f"\t{d}" for d in section.declarations]
    chains = []
    dispatch: dict[str, list[str]] = {}
    for chain, (base, match) in PEER_CHAINS.items():
        rules = [r for s in sections for r in s.rules.get(chain, ())]
        if rules:
            chains.append(_chain(chain, rules))
            dispatch.setdefault(base, []).append(f"{match} @{IFACES} jump {chain}")
    for chain, head in BASE_CHAINS.items():
        rules = dispatch.get(chain, []) + [r for s in sections for r in s.rules.get(chain, ())]
        chains.append(_chain(chain, rules, head))
    return "\n".join([*decl, *chains])


def interface_elements(
    policy: PolicyState, nat: Iterable[NatNetwork], dns: Mapping[str, tuple[str, ...]]
) -> frozenset[Element]:
    """Our interfaces, their gateways and networks, and the walls: an interface's peers
    reach the gateways of its own tenant's interfaces only. `dns` maps an interface to the
    gateway addresses its peers' port 53 goes to (empty without DNS filtering)."""
    out: set[Element] = set()
    for name in policy.interfaces:
        out |= {Element(IFACES, f'"{name}"'), Element(SAME_IF, f'"{name}" . "{name}"')}
    tenant = _tenant_of(policy)
    for name in policy.interfaces:
        for owner, address in policy.gateways:
            if tenant.get(owner, owner) == tenant.get(name, name):
                out.add(Element(f"gw_own{_v(address)}", f'"{name}" . {address}'))
    out |= {Element(f"gw{_v(address)}", address) for _, address in policy.gateways}
    out |= {Element(f"vpn{_v(n.network)}", _prefix(n.network)) for n in nat}
    for name, gateways in dns.items():
        for version in ("4", "6"):
            first = next((g for g in gateways if _v(g) == version), None)
            if first is not None and name in policy.interfaces:
                out.add(Element(f"dns{version}", f'"{name}"', first))
    return frozenset(out)


def _tenant_of(policy: PolicyState) -> dict[str, str]:
    """Interface -> its tenant's group. Without tenants given, all interfaces are one."""
    if not policy.tenants:
        return dict.fromkeys(policy.interfaces, "")
    return {name: group[0] for group in policy.tenants for name in group}


def _v(address: str) -> str:
    return "6" if ":" in address else "4"


def _prefix(network: str) -> str:
    """A network as nft lists it in an interval set (a single address without /32 or /128)."""
    net = ipaddress.ip_network(network, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def peer_layer(policy: PolicyState) -> PeerLayer:
    """The per-peer elements and quotas the policy asks for."""
    elements: set[Element] = set()
    quotas: dict[str, int] = {}
    floors: dict[str, int] = {}
    for peer in policy.peers:
        elements |= peer_elements(peer)
        if peer.cap is not None and peer.quota_name is not None:
            quotas[peer.quota_name] = peer.cap.limit_bytes
            floors[peer.quota_name] = peer.cap.used_floor
    return PeerLayer(frozenset(elements), quotas, floors)


def peer_elements(peer: PeerPolicy) -> frozenset[Element]:
    out: set[Element] = set()
    for address in peer.addresses:
        n = "6" if ":" in address else "4"
        if peer.acl != FULL:
            out.add(Element(f"acl{n}", address, f"jump {acl_chain(peer.acl)}"))
        if peer.mesh:
            out.add(Element(f"mesh{n}", f'"{peer.interface}" . {address}'))
        if peer.quota_name is not None:
            out.add(Element(f"quota{n}", address, f'"{peer.quota_name}"'))
        for app in peer.block_apps:
            if app in APPS:
                out.add(Element(f"block{n}", f"{address} . 0x{mark_of(app):08x}"))
    return frozenset(out)


def ruleset(
    nat: Iterable[NatNetwork],
    uplink: str | None,
    policy: PolicyState | None = None,
    extra: Sequence[Section] = (),
    dns: Mapping[str, tuple[str, ...]] | None = None,
    forwards: Iterable[Forward] = (),
    listen: Sequence[str] = (),
) -> Ruleset:
    policy = policy or PolicyState()
    nat = tuple(nat)
    interfaces = sorted({n.interface for n in nat} | set(policy.interfaces))
    policy = PolicyState(**{**policy.__dict__, "interfaces": tuple(interfaces)})
    sections = [*policy_sections(policy, uplink, listen), *extra, nat_section(uplink)]
    skeleton = compose(sections)
    digest = hashlib.sha256(skeleton.encode()).hexdigest()[:16]
    peers = peer_layer(policy)
    ours = interface_elements(policy, nat, dns or {}) | expose_elements(forwards)
    layer = PeerLayer(peers.elements | ours, peers.quotas, peers.floors)
    return Ruleset(digest, skeleton, layer)


def used_now(quota: str, observed: Mapping[str, Quota], floors: Mapping[str, int]) -> int:
    """Bytes a quota already holds: what the kernel counted for this peer and period (under
    any earlier limit) or what was saved, whichever is more."""
    prefix = quota.rsplit("_", 1)[0] + "_"
    seen = [q.used for name, q in observed.items() if name.startswith(prefix)]
    return max([floors.get(quota, 0), *seen])


def full_script(rs: Ruleset, observed_quotas: Mapping[str, Quota] | None = None) -> str:
    """The whole-table transaction: declared, deleted and recreated in one `nft -f`."""
    seen = observed_quotas or {}
    floors = rs.layer.floors
    quotas = [
        f"\tquota {name} {{ {Quota(name, limit, used_now(name, seen, floors)).declaration()} }}"
        for name, limit in sorted(rs.layer.quotas.items())
    ]
    body = _with_elements(rs.skeleton, rs.layer.elements)
    return (
        "\n".join(
            [
                f"table inet {TABLE}",
                f"delete table inet {TABLE}",
                f"table inet {TABLE} {{",
                f'\tcomment "wirewarden {rs.skeleton_digest}"',
                # The same digest where it can be read without listing every element.
                f'\tset {META} {{ type ipv4_addr; comment "wirewarden {rs.skeleton_digest}"; }}',
                *quotas,
                body,
                "}",
            ]
        )
        + "\n"
    )


def _with_elements(skeleton: str, elements: Iterable[Element]) -> str:
    by_set: dict[str, list[str]] = {}
    for e in elements:
        by_set.setdefault(e.set, []).append(e.text())
    lines = []
    for line in skeleton.split("\n"):
        for name, kind in MANAGED_SETS.items():
            if line == _declaration(name, kind) and by_set.get(name):
                line = _declaration(name, kind, _elements(by_set[name]))
        lines.append(line)
    return "\n".join(lines)


def delta_script(
    have: frozenset[Element],
    want: frozenset[Element],
    have_quotas: Mapping[str, Quota],
    want_quotas: Mapping[str, int],
    floors: Mapping[str, int] | None = None,
) -> str:
    """Element and quota changes as one `nft -f` transaction ('' when nothing changes)."""
    floors = floors or {}
    lines = [f"delete element inet {TABLE} {e.set} {{ {e.key} }}" for e in sorted(have - want)]
    new = sorted(set(want_quotas) - set(have_quotas))
    gone = sorted(set(have_quotas) - set(want_quotas))
    lines += [f"delete quota inet {TABLE} {name}" for name in gone]
    for name in new:
        quota = Quota(name, want_quotas[name], used_now(name, have_quotas, floors))
        lines.append(f"add quota inet {TABLE} {name} {{ {quota.declaration()} }}")
    lines += [f"add element inet {TABLE} {e.set} {{ {e.text()} }}" for e in sorted(want - have)]
    return "\n".join(lines) + "\n" if lines else ""


def over_cap(observed: Mapping[str, Quota]) -> frozenset[int]:
    """Peer ids whose current quota is used up."""
    return frozenset(int(name.split("_")[1]) for name, q in observed.items() if q.used >= q.limit)

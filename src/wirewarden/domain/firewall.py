"""Our nftables table `inet wirewarden`, composed from sections, as pure text.

The table has two layers:
- the skeleton: base chains, profile chains, static sets (interfaces, gateways, LANs) and the
  declarations of the per-peer sets and maps. Its digest is kept in the table comment; when
  it differs from what we would write, the whole table is rewritten in one `nft -f`
  transaction that deletes and recreates it (atomic: no packet sees a half table).
- per-peer elements (ACL verdict maps, mesh sets, quota maps) and quota objects. They are
  compared element by element and changed with `add/delete element` (one peer's change
  never rewrites the table), so a packet costs the same set lookups at 10,000 peers as at 10.

Each feature contributes a `Section` (declarations + rules for the base chains, or for the
from_peer / to_peer / peer_input chains the base chains jump to for traffic of our
interfaces) from its own pure function; `compose` puts them in order. Other features (DNS)
pass their sections in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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
BASE_CHAINS = {
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
}


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


def _family(network: str) -> str:
    return "ip6" if ":" in network else "ip"


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


def gateway_section(policy: PolicyState) -> Section:
    """The gateways' own addresses (DNS, the API) stay reachable under every profile and cap."""
    v4 = [g for g in policy.gateways if ":" not in g]
    v6 = [g for g in policy.gateways if ":" in g]
    decl = (_set("gw4", "ipv4_addr", v4), _set("gw6", "ipv6_addr", v6))
    rules = ("ip daddr @gw4 accept", "ip6 daddr @gw6 accept")
    return Section("gateway", decl, {PEER_INPUT: rules})


def caps_section(policy: PolicyState) -> Section:
    """Named quotas count both directions of a capped peer; over the cap it is dropped."""
    verdict = " drop" if policy.cap_action == "block" else ""
    out = tuple(f"quota name {fam} saddr map @quota{n}{verdict}" for fam, n in _FAMILIES)
    back = tuple(f"quota name {fam} daddr map @quota{n}{verdict}" for fam, n in _FAMILIES)
    rules = {FROM_PEER: out, TO_PEER: back, PEER_INPUT: out if verdict else ()}
    return Section("caps", (), rules)


def isolation_section(policy: PolicyState) -> Section:
    """Peers reach each other only on one interface and only when both have mesh on."""
    rules = []
    for name in sorted(set(policy.interfaces)):
        where = f'iifname "{name}" oifname "{name}"'
        for fam, n in (("ip", "4"), ("ip6", "6")):
            both = f"iifname . {fam} saddr @mesh{n} oifname . {fam} daddr @mesh{n}"
            rules.append(f"{where} {both} accept")
    decl = (_chain("isolation", [*rules, "drop"]),)
    return Section("isolation", decl, {FROM_PEER: (f"oifname @{IFACES} jump isolation",)})


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


def nat_section(nat: Iterable[NatNetwork], uplink: str | None) -> Section:
    """Forwarding and masquerade for the VPN networks (the foundation's part)."""
    nets = sorted(set(nat), key=lambda n: (n.interface, n.network))
    ifaces = sorted({n.interface for n in nets})
    fwd = ["ct state established,related accept", "ct state invalid drop"]
    fwd += [f'iifname "{name}" accept' for name in ifaces]
    post = []
    for n in nets:
        out = f'oifname "{uplink}"' if uplink else f'oifname != "{n.interface}"'
        post.append(f"{_family(n.network)} saddr {n.network} {out} masquerade")
    return Section("nat", (), {"forward": tuple(fwd), "postrouting": tuple(post)})


def policy_sections(policy: PolicyState) -> list[Section]:
    return [
        gateway_section(policy),
        caps_section(policy),
        isolation_section(policy),
        acl_section(policy),
    ]


# ---------------------------------------------------------------- composing


def compose(sections: Sequence[Section], interfaces: Iterable[str]) -> str:
    """The table body (skeleton) from sections, in section order within each base chain."""
    names = [f'"{i}"' for i in interfaces]
    decl = ["\t" + _set(IFACES, "ifname", names)]
    decl += [
        f"\tmap {name} {{ {kind} }}" if ":" in kind else f"\tset {name} {{ {kind} }}"
        for name, kind in PEER_SETS.items()
    ]
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
    return frozenset(out)


def ruleset(
    nat: Iterable[NatNetwork],
    uplink: str | None,
    policy: PolicyState | None = None,
    extra: Sequence[Section] = (),
) -> Ruleset:
    policy = policy or PolicyState()
    nat = tuple(nat)
    interfaces = sorted({n.interface for n in nat} | set(policy.interfaces))
    policy = PolicyState(**{**policy.__dict__, "interfaces": tuple(interfaces)})
    sections = [*policy_sections(policy), *extra, nat_section(nat, uplink)]
    skeleton = compose(sections, interfaces)
    digest = hashlib.sha256(skeleton.encode()).hexdigest()[:16]
    return Ruleset(digest, skeleton, peer_layer(policy))


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
        for name, kind in PEER_SETS.items():
            keyword = "map" if ":" in kind else "set"
            if line == f"\t{keyword} {name} {{ {kind} }}" and by_set.get(name):
                line = f"\t{keyword} {name} {{ {kind}{_elements(by_set[name])} }}"
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

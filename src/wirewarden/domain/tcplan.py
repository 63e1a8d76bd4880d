"""Per-peer speed limits as a tc plan: pure, from desired limits and what tc shows.

Download is shaped by an HTB class per limited peer on the WireGuard device (matching the
peer's address as destination); upload by the same on an IFB device that the WireGuard
device's ingress is redirected to (matching it as source). Classifying uses u32 hash
tables keyed on the address's last byte, so a packet walks one short bucket, not one filter
per peer. Unclassified traffic takes HTB's direct queue at full speed. A peer's class holds
a fair-queuing leaf qdisc where the kernel has one.

A tenant's plan may cap the whole interface (`total_*_kbit` on its peers' policies): then
one parent class 1:1 holds the total, every limited peer's class borrows from it (a small
assured rate, its own limit as ceiling) and a catch-all filter sends everything else
(peers without a limit of their own) to class 1:fffe under the same parent.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wirewarden.domain.policy import PeerPolicy

HT = {4: 0x100, 6: 0x200}  # u32 hash table per address family
PRIO = {4: 1, 6: 2}
PROTO = {4: "ip", 6: "ipv6"}
# Offset of the address's last 32-bit word in the IP header: (source, destination).
LAST_WORD = {4: (12, 16), 6: (20, 36)}
# The tenant's total (parent) and its unlimited peers' traffic (fallback): minors no peer
# takes (peers' minors are index + 1, from 2).
PARENT = 0x1
FALLBACK = 0xFFFE
MAX_MINOR = 0xFFFD
CATCH_ALL_PRIO = 9


@dataclass(frozen=True)
class RateClass:
    minor: int
    rate_kbit: int
    addresses: tuple[str, ...]
    # The class's parent minor (0: the root) and how far it may borrow (None: its rate).
    parent: int = 0
    ceil_kbit: int | None = None

    @property
    def ceil(self) -> int:
        return self.ceil_kbit if self.ceil_kbit is not None else self.rate_kbit


@dataclass(frozen=True)
class DeviceShape:
    """The classes wanted on one device; `match` is 'dst' (download) or 'src' (upload)."""

    device: str
    match: str
    classes: Mapping[int, RateClass] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservedShape:
    """What tc shows on one device (None in ObservedTc where there is no HTB root)."""

    classes: Mapping[int, int] = field(default_factory=dict)  # minor -> rate in kbit
    leaves: frozenset[int] = frozenset()
    filters: Mapping[str, int] = field(default_factory=dict)  # u32 handle -> flowid minor
    hash_links: frozenset[int] = frozenset()  # address families whose hash table is linked
    # Each class's parent minor (0: root) and ceiling in kbit, where tc shows them.
    parents: Mapping[int, int] = field(default_factory=dict)
    ceils: Mapping[int, int] = field(default_factory=dict)
    # The tenant's catch-all filter to the fallback class is in place.
    catch_all: bool = False


@dataclass(frozen=True)
class ObservedTc:
    down: ObservedShape | None = None
    up: ObservedShape | None = None
    ifb: bool = False
    redirect: bool = False


@dataclass(frozen=True)
class TcChanges:
    interface: str
    ifb: str
    create_ifb: bool = False
    delete_ifb: bool = False
    lines: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.create_ifb or self.delete_ifb or self.lines)


IFB_PREFIX = "wwb"
_IFB_NAME = re.compile(r"^wwb[0-9a-f]{10}$")


def ifb_name(interface: str) -> str:
    """The IFB device of an interface: short and stable (link names are at most 15 chars)."""
    return IFB_PREFIX + hashlib.sha256(interface.encode()).hexdigest()[:10]


def is_ours(link: str) -> bool:
    """Whether a link name is one `ifb_name` makes (interface names can't look like it:
    they are taken from users, and the hash part would have to match by chance)."""
    return bool(_IFB_NAME.fullmatch(link))


def minor_of(index: int) -> int:
    return index + 1  # 1:1 would be free too, but keeps minors clear of the root's handle


def _kbit(value: int | None, throttle: int | None) -> int | None:
    if throttle is None:
        return value
    return throttle if value is None else min(value, throttle)


def wanted(
    peers: Iterable[PeerPolicy],
    interface: str,
    throttled: frozenset[int] = frozenset(),
    throttle_kbit: int = 1000,
) -> tuple[DeviceShape, DeviceShape]:
    """The download and upload shapes of one interface; a throttled (over-cap) peer gets the
    throttle rate, or its own where that is lower. Under a tenant's total, classes hang
    below its parent."""
    mine = [p for p in peers if p.interface == interface]
    down_total = next((p.total_down_kbit for p in mine if p.total_down_kbit), None)
    up_total = next((p.total_up_kbit for p in mine if p.total_up_kbit), None)
    down: dict[int, RateClass] = _tenant(down_total)
    up: dict[int, RateClass] = _tenant(up_total)
    for peer in mine:
        slow = throttle_kbit if peer.peer_id in throttled else None
        minor = minor_of(peer.index)
        if minor > MAX_MINOR:
            continue  # refused at the API; never reached
        d, u = _kbit(peer.rate_down_kbit, slow), _kbit(peer.rate_up_kbit, slow)
        if d is not None:
            down[minor] = _peer_class(minor, d, peer.addresses, down_total)
        if u is not None:
            up[minor] = _peer_class(minor, u, peer.addresses, up_total)
    return DeviceShape(interface, "dst", down), DeviceShape(ifb_name(interface), "src", up)


def assured(total_kbit: int) -> int:
    """What a class under a tenant's total is sure of before borrowing: small, so that the
    parent decides (HTB lets a class below its own rate send whatever its parent says)."""
    return max(8, total_kbit // 1000)


def _tenant(total: int | None) -> dict[int, RateClass]:
    if total is None:
        return {}
    return {
        PARENT: RateClass(PARENT, total, ()),
        FALLBACK: RateClass(FALLBACK, assured(total), (), parent=PARENT, ceil_kbit=total),
    }


def _peer_class(minor: int, rate: int, addresses: tuple[str, ...], total: int | None) -> RateClass:
    if total is None:
        return RateClass(minor, rate, addresses)
    ceil = min(rate, total)
    return RateClass(minor, min(assured(total), ceil), addresses, parent=PARENT, ceil_kbit=ceil)


def peer_minors(peers: Iterable[PeerPolicy]) -> set[int]:
    """The classes one peer's change looks at: its own, and its tenant's where capped."""
    minors: set[int] = set()
    for p in peers:
        minors.add(minor_of(p.index))
        if p.total_down_kbit or p.total_up_kbit:
            minors |= {PARENT, FALLBACK}
    return minors


def filter_handle(address: str) -> tuple[int, str]:
    """(family, u32 handle) of an address's filter: its hash bucket is the last byte, the
    node id the bits above it, so the same address always has the same handle."""
    ip = ipaddress.ip_address(address)
    bucket = int(ip) & 0xFF
    node = ((int(ip) >> 8) & 0x7FF) + 1
    return ip.version, f"{HT[ip.version]:x}:{bucket:x}:{node:x}"


def _shape_lines(want: DeviceShape, have: ObservedShape | None, leaf: str) -> list[str]:
    dev = want.device
    lines: list[str] = []
    if have is None:
        lines.append(f"qdisc add dev {dev} root handle 1: htb default 0")
        have = ObservedShape()
    for fam in (4, 6):
        if fam not in have.hash_links:
            offset = LAST_WORD[fam][0 if want.match == "src" else 1]
            base = f"filter add dev {dev} parent 1: prio {PRIO[fam]} protocol {PROTO[fam]}"
            lines.append(f"{base} handle {HT[fam]:x}: u32 divisor 256")
            lines.append(
                f"{base} u32 match u32 0 0 hashkey mask 0x000000ff at {offset} link {HT[fam]:x}:"
            )
    # HTB keeps a class's parent on `class replace`: a class that moves (its tenant got or
    # lost a total) is deleted, with the filters bound to it, and made again.
    moved = {
        m
        for m, c in want.classes.items()
        if m in have.classes and have.parents.get(m, 0) != c.parent
    }
    have_classes = {m: r for m, r in have.classes.items() if m not in moved}
    have_filters = {h: m for h, m in have.filters.items() if m not in moved}
    wanted_filters = {
        filter_handle(a)[1]: (c.minor, a) for c in want.classes.values() for a in c.addresses
    }
    for handle in sorted(
        set(have.filters) - set(wanted_filters) | set(have.filters) - set(have_filters)
    ):
        fam = 6 if handle.startswith(f"{HT[6]:x}:") else 4
        lines.append(
            f"filter del dev {dev} parent 1: prio {PRIO[fam]} protocol {PROTO[fam]} "
            f"handle {handle} u32"
        )
    if have.catch_all and FALLBACK not in want.classes:
        lines.append(f"filter del dev {dev} parent 1: prio {CATCH_ALL_PRIO} protocol all")
    # Children before their parent.
    for minor in sorted((set(have.classes) - set(want.classes)) | moved, key=lambda m: m == PARENT):
        lines.append(f"class del dev {dev} classid 1:{minor:x}")
    # Parents before their children.
    for minor, cls in sorted(want.classes.items(), key=lambda item: item[1].parent != 0):
        before = have_classes.get(minor)
        if not (
            _same_rate(before, cls.rate_kbit)
            and _same_rate(have.ceils.get(minor, before), cls.ceil)
        ):
            parent = "1:" if cls.parent == 0 else f"1:{cls.parent:x}"
            lines.append(
                f"class replace dev {dev} parent {parent} classid 1:{minor:x} htb "
                f"rate {cls.rate_kbit}kbit ceil {cls.ceil}kbit quantum {quantum(cls.ceil)}"
            )
        # HTB gives every class a FIFO of its own; only a fair-queuing leaf needs a line
        # (never on the tenant's parent, which holds classes, not packets).
        fresh = minor in moved or minor not in have.leaves
        if leaf != "pfifo" and minor != PARENT and fresh:
            lines.append(f"qdisc replace dev {dev} parent 1:{minor:x} handle {minor:x}: {leaf}")
    for handle, (minor, address) in sorted(wanted_filters.items()):
        if have_filters.get(handle) == minor:
            continue
        fam, _ = filter_handle(address)
        bucket = handle.split(":")[1]
        host = "ip" if fam == 4 else "ip6"
        plen = 32 if fam == 4 else 128
        verb = "replace" if handle in have_filters else "add"
        lines.append(
            f"filter {verb} dev {dev} parent 1: prio {PRIO[fam]} protocol {PROTO[fam]} "
            f"handle {handle} u32 ht {HT[fam]:x}:{bucket}: "
            f"match {host} {want.match} {address}/{plen} flowid 1:{minor:x}"
        )
    if FALLBACK in want.classes and not have.catch_all:
        lines.append(
            f"filter add dev {dev} parent 1: prio {CATCH_ALL_PRIO} protocol all "
            f"u32 match u32 0 0 flowid 1:{FALLBACK:x}"
        )
    return lines


def quantum(rate_kbit: int) -> int:
    """Bytes a class may send per round: rate/10 as HTB's default, kept within the range
    HTB accepts without a warning (one MTU to 200,000)."""
    return max(1600, min(200_000, rate_kbit * 1000 // 8 // 10))


def _same_rate(shown: int | None, wanted: int) -> bool:
    # tc prints rates rounded to a few digits (10.33Mbit): equal within half a percent.
    return shown is not None and abs(shown - wanted) <= wanted * 0.005


def plan(
    interface: str,
    down: DeviceShape,
    up: DeviceShape,
    have: ObservedTc,
    leaf: str = "fq_codel",
) -> TcChanges:
    """The tc batch (and IFB link changes) that turns `have` into the wanted shapes."""
    ifb = up.device
    if not down.classes and not up.classes:
        lines = []
        if have.down is not None:
            lines.append(f"qdisc del dev {interface} root")
        if have.redirect:
            lines.append(f"qdisc del dev {interface} ingress")
        return TcChanges(interface, ifb, delete_ifb=have.ifb, lines=tuple(lines))
    lines = _shape_lines(down, have.down, leaf)
    if not have.redirect:
        lines += _redirect(interface, ifb)
    lines += _shape_lines(up, have.up if have.ifb else None, leaf)
    return TcChanges(interface, ifb, create_ifb=not have.ifb, lines=tuple(lines))


def plan_peer(
    interface: str,
    old: PeerPolicy | None,
    new: PeerPolicy | None,
    have: ObservedTc,
    leaf: str = "fq_codel",
) -> TcChanges:
    """One peer's change alone: its classes and filters, plus the device set-up where it is
    the first limited peer (and its tenant's parent where the tenant is capped). Other
    peers' classes, and the tenant's classes when the new policy has no total, are left as
    they are."""
    down, up = wanted([new] if new is not None else [], interface)
    handles = {filter_handle(a)[1] for p in (old, new) if p is not None for a in p.addresses}
    own = {minor_of(p.index) for p in (old, new) if p is not None}
    if not down.classes and not up.classes and have.down is None and not have.ifb:
        return TcChanges(interface, up.device)
    lines = _shape_lines(down, _only(have.down, own | set(down.classes), handles), leaf)
    if not have.redirect:
        lines += _redirect(interface, up.device)
    up_have = _only(have.up if have.ifb else None, own | set(up.classes), handles)
    lines += _shape_lines(up, up_have, leaf)
    return TcChanges(interface, up.device, create_ifb=not have.ifb, lines=tuple(lines))


def _only(have: ObservedShape | None, minors: set[int], handles: set[str]) -> ObservedShape | None:
    if have is None:
        return None
    return ObservedShape(
        {m: r for m, r in have.classes.items() if m in minors},
        frozenset(m for m in have.leaves if m in minors),
        {h: m for h, m in have.filters.items() if h in handles},
        have.hash_links,
        {m: p for m, p in have.parents.items() if m in minors},
        {m: c for m, c in have.ceils.items() if m in minors},
        # The catch-all is the tenant's: looked at only where this change wants it.
        have.catch_all and FALLBACK in minors,
    )


def _redirect(interface: str, ifb: str) -> list[str]:
    return [
        f"qdisc add dev {interface} handle ffff: ingress",
        f"filter add dev {interface} parent ffff: protocol all prio 1 u32 match u32 0 0 "
        f"action mirred egress redirect dev {ifb}",
    ]


def as_observed(down: DeviceShape, up: DeviceShape) -> ObservedTc:
    """What tc would show once the shapes are applied (for the in-memory data plane)."""
    if not down.classes and not up.classes:
        return ObservedTc()

    def shape(s: DeviceShape) -> ObservedShape:
        filters = {filter_handle(a)[1]: c.minor for c in s.classes.values() for a in c.addresses}
        rates = {m: c.rate_kbit for m, c in s.classes.items()}
        return ObservedShape(
            rates,
            frozenset(m for m in rates if m != PARENT),
            filters,
            frozenset((4, 6)),
            {m: c.parent for m, c in s.classes.items()},
            {m: c.ceil for m, c in s.classes.items()},
            FALLBACK in s.classes,
        )

    return ObservedTc(shape(down), shape(up), True, True)


def merge_observed(
    have: ObservedTc, down: DeviceShape, up: DeviceShape, touched: frozenset[int]
) -> ObservedTc:
    """`have` with the classes of `touched` minors replaced by those of the given shapes."""
    new = as_observed(down, up)

    def merge(old: ObservedShape | None, add: ObservedShape | None) -> ObservedShape | None:
        if old is None and add is None:
            return None
        old = old or ObservedShape(hash_links=frozenset(HT))
        add = add or ObservedShape()
        gone = {h for h, m in old.filters.items() if m in touched}

        def keep(values: Mapping[int, int], more: Mapping[int, int]) -> dict[int, int]:
            return {**{m: v for m, v in values.items() if m not in touched}, **more}

        return ObservedShape(
            keep(old.classes, add.classes),
            frozenset(m for m in old.leaves if m not in touched) | add.leaves,
            {**{h: m for h, m in old.filters.items() if h not in gone}, **add.filters},
            old.hash_links | add.hash_links,
            keep(old.parents, add.parents),
            keep(old.ceils, add.ceils),
            old.catch_all or add.catch_all,
        )

    down_shape = merge(have.down, new.down)
    up_shape = merge(have.up, new.up)
    limited = bool(down_shape and down_shape.classes) or bool(up_shape and up_shape.classes)
    return ObservedTc(down_shape, up_shape, have.ifb or limited, have.redirect or limited)

"""Per-peer speed limits as a tc plan: pure, from desired limits and what tc shows.

Download is shaped by an HTB class per limited peer on the WireGuard device (matching the
peer's address as destination); upload by the same on an IFB device that the WireGuard
device's ingress is redirected to (matching it as source). Classifying uses u32 hash
tables keyed on the address's last byte, so a packet walks one short bucket, not one filter
per peer. Unclassified traffic takes HTB's direct queue at full speed. A peer's class holds
a fair-queuing leaf qdisc where the kernel has one.
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
MAX_MINOR = 0xFFFE


@dataclass(frozen=True)
class RateClass:
    minor: int
    rate_kbit: int
    addresses: tuple[str, ...]


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
    throttle rate, or its own where that is lower."""
    down: dict[int, RateClass] = {}
    up: dict[int, RateClass] = {}
    for peer in peers:
        if peer.interface != interface:
            continue
        slow = throttle_kbit if peer.peer_id in throttled else None
        minor = minor_of(peer.index)
        if minor > MAX_MINOR:
            continue  # refused at the API; never reached
        d, u = _kbit(peer.rate_down_kbit, slow), _kbit(peer.rate_up_kbit, slow)
        if d is not None:
            down[minor] = RateClass(minor, d, peer.addresses)
        if u is not None:
            up[minor] = RateClass(minor, u, peer.addresses)
    return DeviceShape(interface, "dst", down), DeviceShape(ifb_name(interface), "src", up)


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
    wanted_filters = {
        filter_handle(a)[1]: (c.minor, a) for c in want.classes.values() for a in c.addresses
    }
    for handle in sorted(set(have.filters) - set(wanted_filters)):
        fam = 6 if handle.startswith(f"{HT[6]:x}:") else 4
        lines.append(
            f"filter del dev {dev} parent 1: prio {PRIO[fam]} protocol {PROTO[fam]} "
            f"handle {handle} u32"
        )
    for minor in sorted(set(have.classes) - set(want.classes)):
        lines.append(f"class del dev {dev} classid 1:{minor:x}")
    for minor, cls in sorted(want.classes.items()):
        if not _same_rate(have.classes.get(minor), cls.rate_kbit):
            rate = f"{cls.rate_kbit}kbit"
            lines.append(
                f"class replace dev {dev} parent 1: classid 1:{minor:x} htb rate {rate} ceil {rate}"
                f" quantum {quantum(cls.rate_kbit)}"
            )
        # HTB gives every class a FIFO of its own; only a fair-queuing leaf needs a line.
        if leaf != "pfifo" and minor not in have.leaves:
            lines.append(f"qdisc replace dev {dev} parent 1:{minor:x} handle {minor:x}: {leaf}")
    for handle, (minor, address) in sorted(wanted_filters.items()):
        if have.filters.get(handle) == minor:
            continue
        fam, _ = filter_handle(address)
        bucket = handle.split(":")[1]
        host = "ip" if fam == 4 else "ip6"
        plen = 32 if fam == 4 else 128
        verb = "replace" if handle in have.filters else "add"
        lines.append(
            f"filter {verb} dev {dev} parent 1: prio {PRIO[fam]} protocol {PROTO[fam]} "
            f"handle {handle} u32 ht {HT[fam]:x}:{bucket}: "
            f"match {host} {want.match} {address}/{plen} flowid 1:{minor:x}"
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
    the first limited peer. Other peers' classes are left as they are."""
    minors = {minor_of(p.index) for p in (old, new) if p is not None}
    handles = {filter_handle(a)[1] for p in (old, new) if p is not None for a in p.addresses}
    down, up = wanted([new] if new is not None else [], interface)
    if not down.classes and not up.classes and have.down is None and not have.ifb:
        return TcChanges(interface, up.device)
    lines = _shape_lines(down, _only(have.down, minors, handles), leaf)
    if not have.redirect:
        lines += _redirect(interface, up.device)
    lines += _shape_lines(up, _only(have.up if have.ifb else None, minors, handles), leaf)
    return TcChanges(interface, up.device, create_ifb=not have.ifb, lines=tuple(lines))


def _only(have: ObservedShape | None, minors: set[int], handles: set[str]) -> ObservedShape | None:
    if have is None:
        return None
    return ObservedShape(
        {m: r for m, r in have.classes.items() if m in minors},
        frozenset(m for m in have.leaves if m in minors),
        {h: m for h, m in have.filters.items() if h in handles},
        have.hash_links,
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
        return ObservedShape(rates, frozenset(rates), filters, frozenset((4, 6)))

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
        return ObservedShape(
            {**{m: r for m, r in old.classes.items() if m not in touched}, **add.classes},
            frozenset(m for m in old.leaves if m not in touched) | add.leaves,
            {**{h: m for h, m in old.filters.items() if h not in gone}, **add.filters},
            old.hash_links | add.hash_links,
        )

    down_shape = merge(have.down, new.down)
    up_shape = merge(have.up, new.up)
    limited = bool(down_shape and down_shape.classes) or bool(up_shape and up_shape.classes)
    return ObservedTc(down_shape, up_shape, have.ifb or limited, have.redirect or limited)

"""Network policy as plain values: ACL profiles, per-peer limits and caps, cap periods."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Literal

from wirewarden.domain import addresses

FULL, INTERNET_ONLY, INTRANET_ONLY = "full", "internet-only", "intranet-only"
BUILTIN_PROFILES = (FULL, INTERNET_ONLY, INTRANET_ONLY)
PROTOCOLS = ("any", "tcp", "udp", "icmp")
CapAction = Literal["block", "throttle"]

# What "internet-only" keeps a peer away from besides the server's LANs.
PRIVATE_V4 = ("10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16")
PRIVATE_V6 = ("fc00::/7", "fe80::/10")


class PolicyError(ValueError):
    """An invalid profile rule or policy value; `field` names what was wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class AclRule:
    """One ordered rule of a custom profile: allow or deny traffic to a network."""

    action: Literal["allow", "deny"]
    cidr: str
    proto: str = "any"
    port_from: int | None = None
    port_to: int | None = None

    @property
    def family(self) -> int:
        return ipaddress.ip_network(self.cidr).version


@dataclass(frozen=True)
class Profile:
    """A custom profile: rules in order, first match wins, then the default."""

    name: str
    rules: tuple[AclRule, ...]
    default: Literal["allow", "deny"] = "deny"


@dataclass(frozen=True)
class Cap:
    """A data cap in force for the current period."""

    limit_bytes: int
    period_start: int  # epoch seconds; part of the quota's name, so a new period is a new quota
    used_floor: int = 0  # bytes already counted this period (persisted), restored into the quota


@dataclass(frozen=True)
class PeerPolicy:
    interface: str
    peer_id: int
    index: int
    ipv4: str
    ipv6: str | None = None
    acl: str = FULL
    mesh: bool = False
    rate_down_kbit: int | None = None
    rate_up_kbit: int | None = None
    cap: Cap | None = None
    # Classes of traffic refused (domain.classify.verdict.APPS), sorted.
    block_apps: tuple[str, ...] = ()
    # The whole interface's limits (its tenant's plan), the same on each of its peers.
    total_down_kbit: int | None = None
    total_up_kbit: int | None = None

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.ipv4, *((self.ipv6,) if self.ipv6 else ()))

    @property
    def quota_name(self) -> str | None:
        # Peer, period and limit in the name: a new period or a new limit is a new quota
        # (the bytes of this period carried over), never a change of a quota in place.
        if self.cap is None:
            return None
        return f"cap_{self.peer_id}_{self.cap.period_start}_{self.cap.limit_bytes}"


@dataclass(frozen=True)
class PolicyState:
    """Everything the firewall and tc renderers need beyond NAT."""

    peers: tuple[PeerPolicy, ...] = ()
    profiles: tuple[Profile, ...] = ()
    # Networks of the server's LANs ("intranet"); None until the host's were looked up.
    lan_networks: tuple[str, ...] | None = None
    # (interface, address) for each interface's own addresses: DNS and the API stay
    # reachable there under every profile, for the peers of the same tenant only.
    gateways: tuple[tuple[str, str], ...] = ()
    cap_action: CapAction = "block"
    throttle_kbit: int = 1000
    # The leaf qdisc inside a rate class (fair queuing where the kernel has it).
    leaf_qdisc: str = "fq_codel"
    interfaces: tuple[str, ...] = field(default=())
    # The interfaces of each tenant: no packet crosses from one group to another. Empty: one
    # group of all (a single-tenant caller).
    tenants: tuple[tuple[str, ...], ...] = ()


def parse_rule(raw: dict[str, object], where: str = "rules") -> AclRule:
    """A rule from its API form; raises PolicyError naming the field."""
    action = str(raw.get("action", "allow"))
    if action not in ("allow", "deny"):
        raise PolicyError(f"{where}: action must be 'allow' or 'deny'", where)
    cidr = str(raw.get("cidr", ""))
    try:
        net = str(addresses.network(cidr))
    except addresses.AddressError as exc:
        raise PolicyError(f"{where}: {cidr!r} is not a valid network ({exc})", where) from exc
    proto = str(raw.get("proto", "any"))
    if proto not in PROTOCOLS:
        raise PolicyError(f"{where}: proto must be one of {', '.join(PROTOCOLS)}", where)
    port_from, port_to = _ports(raw.get("ports"), proto, where)
    return AclRule("allow" if action == "allow" else "deny", net, proto, port_from, port_to)


def _ports(value: object, proto: str, where: str) -> tuple[int | None, int | None]:
    if value in (None, ""):
        return None, None
    if proto not in ("tcp", "udp"):
        raise PolicyError(f"{where}: ports need proto tcp or udp", where)
    text = str(value)
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError as exc:
        raise PolicyError(f"{where}: ports {text!r} is not N or N-M", where) from exc
    if not (1 <= first <= last <= 65535):
        raise PolicyError(f"{where}: ports must be within 1-65535, low to high", where)
    return first, last


def check_rules(rules: tuple[AclRule, ...], where: str = "rules") -> None:
    """Refuse a rule that can never match because an earlier one covers it entirely."""
    for i, rule in enumerate(rules):
        net = ipaddress.ip_network(rule.cidr)
        for earlier in rules[:i]:
            prev = ipaddress.ip_network(earlier.cidr)
            same_family = prev.version == net.version
            if same_family and net.subnet_of(prev) and _covers(earlier, rule):  # type: ignore[arg-type]
                raise PolicyError(
                    f"{where}[{i}]: {rule.cidr} overlaps {earlier.cidr} of rule "
                    f"{rules.index(earlier)}, which already decides all its traffic",
                    where,
                )


def _covers(a: AclRule, b: AclRule) -> bool:
    if a.proto != "any" and a.proto != b.proto:
        return False
    if a.port_from is None:
        return True
    if b.port_from is None or b.port_to is None or a.port_to is None:
        return False
    return a.port_from <= b.port_from and b.port_to <= a.port_to


def period_bounds(now: datetime, reset_day: int, tz: tzinfo) -> tuple[datetime, datetime]:
    """The cap period holding `now`: from 00:00 of the reset day (server time zone) to the next."""
    local = now.astimezone(tz)
    start = local.replace(day=reset_day, hour=0, minute=0, second=0, microsecond=0)
    if start > local:
        start = _add_months(start, -1)
    return start, _add_months(start, 1)


def _add_months(moment: datetime, months: int) -> datetime:
    # With a ZoneInfo zone the offset follows the wall clock time, so DST is handled.
    year, month = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    return moment.replace(year=year, month=month + 1)


@dataclass(frozen=True)
class PolicyConfig:
    """Node-wide policy settings (from the composition root)."""

    lan_networks: tuple[str, ...] | None = None
    cap_action: CapAction = "block"
    throttle_kbit: int = 1000
    tz: tzinfo | None = None
    leaf_qdisc: str = "fq_codel flows 64"


def cap_period(
    now: datetime, reset_day: int, tz: tzinfo, reset_at: datetime | None
) -> tuple[datetime, datetime]:
    """The current period: from the reset day (or a later manual reset) to the next reset day."""
    start, end = period_bounds(now, reset_day, tz)
    if reset_at is not None and start < reset_at <= now:
        start = reset_at
    return start, end


def profile_from_row(name: str, rules: list[dict[str, object]], default: str) -> Profile:
    parsed = tuple(parse_rule(r, f"rules[{i}]") for i, r in enumerate(rules))
    return Profile(name, parsed, "allow" if default == "allow" else "deny")

"""Inputs and outputs of the use cases, validated at the edge (DESIGN.md §8)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from wirewarden.domain import addresses, vhost
from wirewarden.domain.classify.verdict import App
from wirewarden.domain.exposure import ExposeError, parse_ports
from wirewarden.domain.keys import parse_key
from wirewarden.domain.names import check_display_name, check_ifname, check_name
from wirewarden.store.desired import split_csv

T = TypeVar("T")


def _csv(value: object) -> object:
    if isinstance(value, list | tuple):
        return ", ".join(str(v).strip() for v in value)
    return value


Csv = Annotated[str, BeforeValidator(_csv)]


def split(text: str) -> list[str]:
    return list(split_csv(text))


def parse_networks(text: str) -> list[str]:
    """Comma-separated CIDRs, each normalised; host bits are not allowed."""
    return [str(addresses.network(part)) for part in split(text)]


def parse_interface_address(text: str) -> tuple[str, str | None]:
    """The interface's own IPv4 (required) and IPv6 (optional) address with prefix."""
    v4: ipaddress.IPv4Interface | None = None
    v6: ipaddress.IPv6Interface | None = None
    for part in split(text):
        iface = addresses.interface(part)
        if isinstance(iface, ipaddress.IPv4Interface):
            if v4 is not None:
                raise ValueError("give at most one IPv4 and one IPv6 network")
            v4 = _v4_gateway(iface)
        else:
            if v6 is not None:
                raise ValueError("give at most one IPv4 and one IPv6 network")
            v6 = _v6_gateway(iface)
    if v4 is None:
        raise ValueError("an IPv4 network is required, like 10.8.0.1/24")
    if v6 is not None and v6.network.num_addresses < v4.network.num_addresses:
        raise ValueError("the IPv6 network must be at least as large as the IPv4 one")
    for net in (v4.network, *((v6.network,) if v6 else ())):
        reason = addresses.reserved_reason(net)
        if reason:
            raise ValueError(reason)
    return str(v4), (str(v6) if v6 else None)


def _v4_gateway(iface: ipaddress.IPv4Interface) -> ipaddress.IPv4Interface:
    if not 8 <= iface.network.prefixlen <= 30:
        raise ValueError("the IPv4 prefix must be between /8 and /30")
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        # A bare network such as 10.8.0.0/24 means "the first host is the gateway".
        return ipaddress.IPv4Interface(
            f"{iface.network.network_address + 1}/{iface.network.prefixlen}"
        )
    return iface


def _v6_gateway(iface: ipaddress.IPv6Interface) -> ipaddress.IPv6Interface:
    if not 8 <= iface.network.prefixlen <= 126:
        raise ValueError("the IPv6 prefix must be between /8 and /126")
    if iface.ip == iface.network.network_address:
        return ipaddress.IPv6Interface(
            f"{iface.network.network_address + 1}/{iface.network.prefixlen}"
        )
    return iface


def parse_dns(text: str) -> str:
    """Comma-separated nameserver addresses, each in its canonical spelling."""
    return ", ".join(str(addresses.ip(part)) for part in split(text))


def parse_endpoint(text: str) -> str:
    """host, host:port, [v6] or [v6]:port; the host is a DNS name or an IP address."""
    addresses.endpoint(text)
    return text


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


Port = Annotated[int, Field(ge=1, le=65535)]
Mtu = Annotated[int, Field(ge=1280, le=9000)]
Keepalive = Annotated[int, Field(ge=0, le=65535)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InterfaceCreate(Strict):
    name: str = Field(description="Link name, at most 15 characters")
    address: Csv | None = Field(None, description="CIDRs, e.g. '10.8.0.1/24, fd00:8::1/64'")
    listen_port: Port | None = None
    endpoint: str | None = Field(None, description="Public host[:port] clients dial")
    dns: Csv = ""
    mtu: Mtu = 1420
    tenant: str | None = Field(None, description="Its tenant (default: `default`); admins")
    node: str | None = Field(None, description="The node it runs on (default: this one)")

    _name = field_validator("name")(lambda cls, v: check_ifname(v))
    _dns = field_validator("dns")(lambda cls, v: parse_dns(v))
    _endpoint = field_validator("endpoint")(lambda cls, v: parse_endpoint(v) if v else None)

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        return None if v is None else ", ".join(a for a in parse_interface_address(v) if a)


class InterfaceUpdate(Strict):
    address: Csv | None = None
    listen_port: Port | None = None
    endpoint: str | None = None
    dns: Csv | None = None
    mtu: Mtu | None = None
    enabled: bool | None = None

    _dns = field_validator("dns")(lambda cls, v: v if v is None else parse_dns(v))
    _endpoint = field_validator("endpoint")(lambda cls, v: parse_endpoint(v) if v else None)
    _address = field_validator("address")(InterfaceCreate._address.__func__)  # type: ignore[attr-defined]


class PeerCreate(Strict):
    # display_name first: the check of `name` looks at it.
    display_name: str | None = Field(
        None, description='The name people read, e.g. "Dad\'s Laptop" (default: the slug)'
    )
    name: str | None = Field(
        None,
        validate_default=True,
        description="The slug (API, CLI, file names); made from display_name if left out",
    )
    address: Csv | None = Field(None, description="e.g. '10.8.0.5' or '10.8.0.5/32, fd00:8::5'")
    allowed_ips: Csv = Field("0.0.0.0/0, ::/0", description="What the client routes")
    routed_ips: Csv = Field("", description="Networks behind the peer the server routes to it")
    persistent_keepalive: Keepalive | None = None
    expires_at: datetime | None = None
    public_key: str | None = Field(None, description="Bring your own key; no config download")
    enabled: bool = True
    owner: str | None = Field(None, description="User whose device this is (default: none)")

    _display = field_validator("display_name")(
        lambda cls, v: v if v is None else check_display_name(v)
    )
    _allowed = field_validator("allowed_ips", "routed_ips")(
        lambda cls, v: ", ".join(parse_networks(v))
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            return check_name(v)
        # Absent from info.data: display_name was given but invalid, and says so itself.
        if "display_name" in info.data and info.data["display_name"] is None:
            raise ValueError("give a name (a slug) or a display_name")
        return None

    _expires = field_validator("expires_at")(lambda cls, v: _aware(v))
    _key = field_validator("public_key")(lambda cls, v: v and parse_key(v))

    @field_validator("allowed_ips")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v:
            raise ValueError("at least one network is required")
        return v


Kbit = Annotated[int, Field(ge=8, le=100_000_000, description="kbit/s; null = unlimited")]
Bytes = Annotated[int, Field(ge=1, le=2**62, description="bytes; null = no cap")]
ResetDay = Annotated[int, Field(ge=1, le=28)]
BLOCK_APPS_HELP = 'Classes of traffic refused, e.g. ["bittorrent"]; []: none'


def apps_csv(apps: Iterable[str]) -> str:
    """Blocked classes as stored: sorted, once each, comma separated."""
    return ",".join(sorted(set(apps)))


# Policy fields PATCH can set back to null.
NULLABLE = (
    "expires_at",
    "persistent_keepalive",
    "rate_down_kbit",
    "rate_up_kbit",
    "data_cap_bytes",
    "dns_policy",
    "display_name",
)


class PeerUpdate(Strict):
    name: str | None = None
    display_name: str | None = Field(None, description="null: show the slug")
    enabled: bool | None = None
    allowed_ips: Csv | None = None
    routed_ips: Csv | None = None
    persistent_keepalive: Keepalive | None = None
    expires_at: datetime | None = None
    acl: str | None = Field(
        None, description="full, internet-only, intranet-only or a custom profile's name"
    )
    mesh: bool | None = Field(None, description="May reach other peers of its interface")
    rate_down_kbit: Kbit | None = None
    rate_up_kbit: Kbit | None = None
    data_cap_bytes: Bytes | None = None
    cap_reset_day: ResetDay | None = None

    _acl = field_validator("acl")(lambda cls, v: v if v is None else check_name(v))
    # A DNS policy's name; null goes back to the tenant's policy (else `default`).
    dns_policy: str | None = None
    expose_ports: str | None = Field(
        None, description='Ports and ranges the peer may publish, e.g. "8000-8100,9000"; "": none'
    )
    block_apps: list[App] | None = Field(None, description=BLOCK_APPS_HELP)

    _name = field_validator("name")(lambda cls, v: v if v is None else check_name(v))
    _display = field_validator("display_name")(
        lambda cls, v: v if v is None else check_display_name(v)
    )
    _dns_policy = field_validator("dns_policy")(lambda cls, v: v if v is None else check_name(v))
    _allowed = field_validator("allowed_ips", "routed_ips")(
        lambda cls, v: v if v is None else ", ".join(parse_networks(v))
    )
    _expires = field_validator("expires_at")(lambda cls, v: _aware(v))

    @field_validator("expose_ports")
    @classmethod
    def _expose_ports(cls, v: str | None) -> str | None:
        try:
            return v if v is None else str(parse_ports(v))
        except ExposeError as exc:
            raise ValueError(str(exc).removeprefix("expose_ports: ")) from exc

    @field_validator("allowed_ips")
    @classmethod
    def _not_empty(cls, v: str | None) -> str | None:
        if v is not None and not v:
            raise ValueError("at least one network is required")
        return v


class InterfaceOut(BaseModel):
    name: str
    node: str = ""
    address: str
    listen_port: int
    public_key: str
    endpoint: str | None
    dns: str
    mtu: int
    enabled: bool
    status: str
    error: str | None
    peer_count: int
    created_at: datetime


class PeerOut(BaseModel):
    id: int
    interface: str
    node: str = Field("", description="The node its interface runs on")
    name: str
    display_name: str = ""  # the name people read; the slug where none was given
    address: str
    public_key: str
    allowed_ips: str
    routed_ips: str
    persistent_keepalive: int | None
    enabled: bool
    expires_at: datetime | None
    expired: bool
    has_private_key: bool
    status: str
    error: str | None
    endpoint: str | None = None
    latest_handshake: datetime | None = None
    online: bool = False
    rx_bytes: int = 0
    tx_bytes: int = 0
    acl: str = "full"
    mesh: bool = False
    rate_down_kbit: int | None = None
    rate_up_kbit: int | None = None
    data_cap_bytes: int | None = None
    cap_reset_day: int = 1
    dns_policy: str | None = None
    expose_ports: str = ""
    block_apps: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    owner: str | None = None


class MappingOut(BaseModel):
    """A published port: the server's `remote_port` forwarded to the peer's `local_port`."""

    id: int
    peer_id: int
    peer: str
    interface: str
    node: str = Field(description="The node whose public addresses it is reached at")
    proto: Literal["tcp", "udp"]
    remote_port: int
    local_port: int
    expires_at: datetime
    created_at: datetime
    # An HTTP service by name: its host name, whether TLS is passed through (reached on
    # the front's HTTPS port `remote_port`), and the address a visitor opens.
    hostname: str | None = None
    tls: bool = False
    url: str | None = None
    # Bytes both ways this node counted (the kernel for a port, the front for a name;
    # a port's count runs on while its target is reused within a day). None: unknown.
    bytes: int | None = None


class MappingIn(Strict):
    """What a peer's client registers through the tunnel API: nothing names the peer (it
    is the packet's tunnel source address)."""

    proto: Literal["tcp", "udp"] = "tcp"
    remote_port: int = Field(ge=1, le=65535, description="The server's public port")
    local_port: int = Field(ge=1, le=65535, description="The port on the peer's tunnel address")


class NameIn(Strict):
    """An HTTP service by name, registered through the tunnel API: published as
    `<name>.<tenant>.<WIREWARDEN_EXPOSE_DOMAIN>` (a leading `*.` for a wildcard)."""

    name: str = Field(max_length=200, description="e.g. blog, or *.blog")
    local_port: int = Field(ge=1, le=65535, description="The port on the peer's tunnel address")
    tls: bool = Field(False, description="The service speaks TLS: passed through by SNI")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return vhost.check_name(v)


class AclRuleIn(Strict):
    action: Literal["allow", "deny"] = "allow"
    cidr: str = Field(description="Destination network, e.g. 10.20.0.0/24 or 0.0.0.0/0")
    proto: Literal["any", "tcp", "udp", "icmp"] = "any"
    ports: str | None = Field(None, description="N or N-M (tcp/udp only)")

    @field_validator("ports", mode="before")
    @classmethod
    def _ports(cls, v: object) -> object:
        return str(v) if isinstance(v, int) else v


class ProfileIn(Strict):
    rules: list[AclRuleIn] = Field(default_factory=list, max_length=500)
    default: Literal["allow", "deny"] = Field("deny", description="When no rule matches")


class ProfileOut(BaseModel):
    name: str
    rules: list[AclRuleIn]
    default: str
    builtin: bool = False
    peer_count: int = 0


class AppUsage(BaseModel):
    app: str = Field(description="The class: bittorrent, tls, quic, http, ssh or other")
    packets: int
    bytes: int
    flows: int = Field(0, description="Connections named this class")


class AppName(BaseModel):
    app: str = Field(description="tls, quic or http")
    name: str = Field(description="The TLS/QUIC server name (SNI) or the HTTP Host")
    flows: int


class AppsOut(BaseModel):
    peer_id: int
    classes: list[AppUsage] = Field(description="Most bytes first")
    names: list[AppName] | None = Field(
        None,
        description="The top server names of the peer's flows since `since` (the last 24 h "
        "without it), most flows first; null unless WIREWARDEN_CLASSIFY_NAMES is on",
    )
    counting: bool = Field(
        description="The classifier ran on the peer's node: counts since its firewall "
        "was last written whole (a restart of the host, a change of its skeleton)"
    )
    since: datetime | None = Field(
        None, description="Given: the classes' traffic since then, from the metrics store"
    )


class UsageOut(BaseModel):
    peer_id: int
    used_bytes: int = Field(
        description="Bytes counted against the cap: the quota's count for a capped peer, "
        "else traffic_bytes"
    )
    cap_bytes: int | None
    over: bool
    period_start: datetime | None
    period_end: datetime | None
    cap_reset_day: int
    cap_action: str
    rx_bytes: int = Field(0, description="Received from the peer this period (its upload)")
    tx_bytes: int = Field(0, description="Sent to the peer this period (its download)")
    traffic_bytes: int = Field(0, description="rx_bytes + tx_bytes, from the traffic history")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class KeyPage(Page[T], Generic[T]):
    """A page of rows ordered by a unique key (peers by name), which can be paged by key."""

    next: str | None = Field(
        None,
        description="The cursor of the next page, to pass as `after` (as fast at any depth "
        "as the first page, and no row repeated or skipped when rows come or go before it); "
        "null on the last page",
    )

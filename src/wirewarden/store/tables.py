"""The database schema. Every change to it comes with an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps in UTC, aware on the way out even where SQLite stores them naive."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Bumped in the transaction of every change to this node's desired state.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Placement (fleet): where the node is and how many peers it takes before it counts as
    # full (a soft limit: a full node is used only when every node of its region is).
    region: Mapped[str] = mapped_column(String(32), default="", server_default="")
    capacity: Mapped[int] = mapped_column(Integer, default=1000, server_default="1000")
    country: Mapped[str | None] = mapped_column(String(2))
    city: Mapped[str | None] = mapped_column(String(64))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # A draining node keeps its peers and gets no new one.
    drain: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The node's public host, as the operator says (never a tenant): where the control
    # plane's front passes visitors of names published by the node's peers.
    public_host: Mapped[str | None] = mapped_column(String(255))


class NodeStatus(Base):
    """What a node's agent last said (heartbeats, acks, reports): a row apart from `nodes`,
    so a heartbeat neither waits on the row lock a change holds nor bumps a revision."""

    __tablename__ = "node_status"
    node_id: Mapped[int] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|online|offline
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())
    applied_revision: Mapped[int] = mapped_column(Integer, default=0)
    # The digest of the state the agent holds, as it acked it; whether it is what was sent.
    state_hash: Mapped[str] = mapped_column(String(64), default="")
    hash_matches: Mapped[bool] = mapped_column(Boolean, default=False)
    in_sync: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    peers: Mapped[int] = mapped_column(Integer, default=0)
    online_peers: Mapped[int] = mapped_column(Integer, default=0)
    rx_bps: Mapped[int] = mapped_column(BigInteger, default=0)
    tx_bps: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_percent: Mapped[float] = mapped_column(Float, default=0.0)
    version: Mapped[str] = mapped_column(String(32), default="")
    uptime_s: Mapped[int] = mapped_column(BigInteger, default=0)
    # The last report's sequence number (a batch sent twice is counted once) and the
    # kernel quota counters it carried, by quota name: what the node's data caps counted.
    report_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    quotas: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class NodeJoinToken(Base):
    """A one-time token an agent trades for its node credential (stored as its SHA-256)."""

    __tablename__ = "node_join_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class NodeCredential(Base):
    """The bearer credential a node's agent uses (stored as its SHA-256); revocable."""

    __tablename__ = "node_credentials"
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Plan(Base):
    """What a tenant may have: null is unlimited. The per-peer fields are a new peer's
    default and the ceiling a tenant admin may set."""

    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    max_peers: Mapped[int | None] = mapped_column(Integer)
    rate_down_kbit: Mapped[int | None] = mapped_column(Integer)
    rate_up_kbit: Mapped[int | None] = mapped_column(Integer)
    data_cap_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # The whole tenant's rates (an HTB parent class above its peers' classes).
    rate_total_down_kbit: Mapped[int | None] = mapped_column(Integer)
    rate_total_up_kbit: Mapped[int | None] = mapped_column(Integer)
    # For the expose feature: how many mappings, and which ports ("8000-8100,9000").
    max_mappings: Mapped[int | None] = mapped_column(Integer)
    expose_ports: Mapped[str | None] = mapped_column(String(255))
    # Classes of traffic refused to every peer of its tenants ("bittorrent"; "": none).
    block_apps: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # None: no plan, no limits. A plan in use cannot be deleted.
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("plans.id", ondelete="RESTRICT"), index=True
    )
    # The DNS policy of the tenant's peers that have none of their own (None: `default`).
    dns_policy: Mapped[str | None] = mapped_column(String(32))
    # A disabled tenant keeps its data; none of its peers is in the kernel.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # Classes of traffic refused to all its peers, besides its plan's and each peer's own.
    block_apps: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Interface(Base):
    __tablename__ = "interfaces"
    __table_args__ = (
        UniqueConstraint("node_id", "name", name="uq_interfaces_node_name"),
        UniqueConstraint("node_id", "listen_port", name="uq_interfaces_node_port"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    name: Mapped[str] = mapped_column(String(15))
    ipv4: Mapped[str] = mapped_column(String(64))
    ipv6: Mapped[str | None] = mapped_column(String(64))
    listen_port: Mapped[int] = mapped_column(Integer)
    private_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    public_key: Mapped[str] = mapped_column(String(44))
    endpoint: Mapped[str | None] = mapped_column(String(255))
    dns: Mapped[str] = mapped_column(String(255), default="")
    mtu: Mapped[int] = mapped_column(Integer, default=1420)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_state: Mapped[str] = mapped_column(String(16), default="pending")
    sync_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Peer(Base):
    __tablename__ = "peers"
    __table_args__ = (
        UniqueConstraint("interface_id", "name", name="uq_peers_interface_name"),
        UniqueConstraint("interface_id", "host_index", name="uq_peers_interface_index"),
        UniqueConstraint("interface_id", "ipv6", name="uq_peers_interface_ipv6"),
        UniqueConstraint("interface_id", "public_key", name="uq_peers_interface_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    interface_id: Mapped[int] = mapped_column(ForeignKey("interfaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))  # the slug: API, CLI, file names
    # What people call it ("Dad's Laptop"); None: the slug is the name shown.
    display_name: Mapped[str | None] = mapped_column(String(64))
    host_index: Mapped[int] = mapped_column(Integer)
    ipv4: Mapped[str] = mapped_column(String(64))
    ipv6: Mapped[str | None] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(44))
    private_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    preshared_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # What the client routes through the tunnel (its AllowedIPs), comma separated.
    allowed_ips: Mapped[str] = mapped_column(Text)
    # Networks behind the peer that the server routes to it besides its own addresses.
    routed_ips: Mapped[str] = mapped_column(Text, default="")
    persistent_keepalive: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Network policy (issue 7): ACL profile name, mesh, speed limits and the data cap.
    acl: Mapped[str] = mapped_column(String(32), default="full", server_default="full")
    mesh: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    rate_down_kbit: Mapped[int | None] = mapped_column(Integer)
    rate_up_kbit: Mapped[int | None] = mapped_column(Integer)
    data_cap_bytes: Mapped[int | None] = mapped_column(BigInteger)
    cap_reset_day: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # A manual reset starts a new period at that moment (until the next reset day).
    cap_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bytes the quota had counted at the last look, and the period they belong to (epoch s):
    # restored into the quota when the kernel lost it (reboot).
    cap_used_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    cap_used_period: Mapped[int | None] = mapped_column(BigInteger)
    # The peer's own DNS policy (None: its tenant's, else `default`).
    dns_policy: Mapped[str | None] = mapped_column(String(32))
    # Ports and ranges the peer may publish through the server ("8000-8100,9000"; "": none).
    expose_ports: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Classes of traffic refused to the peer ("bittorrent,ssh"; "": none), docs/classify.md.
    block_apps: Mapped[str] = mapped_column(Text, default="", server_default="")
    sync_state: Mapped[str] = mapped_column(String(16), default="pending")
    sync_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # The user whose device this is (members see only their own); None for admin-made peers.
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class AclProfile(Base):
    """A custom ACL profile: ordered allow/deny rules by network, protocol and port."""

    __tablename__ = "acl_profiles"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_acl_profiles_tenant_name"),
        # NULLs are distinct in a unique constraint: the global names get their own index.
        Index(
            "uq_acl_profiles_global_name",
            "name",
            unique=True,
            sqlite_where=text("tenant_id IS NULL"),
            postgresql_where=text("tenant_id IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # The owning tenant; None: a global one, seen by every tenant.
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(32))
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    default_action: Mapped[str] = mapped_column(String(8), default="deny")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(64), default="read,write,admin")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The user the token acts as (its scopes narrow that user's role); None: a system token.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The tenant the event concerns, for its tenant admin. No foreign key: the log outlives
    # a deleted tenant (whose delete clears this, as SQLite may give its id to a new one).
    tenant_id: Mapped[int | None] = mapped_column(Integer, index=True)


class DnsPolicy(Base):
    __tablename__ = "dns_policies"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_dns_policies_tenant_name"),
        # NULLs are distinct in a unique constraint: the global names get their own index.
        Index(
            "uq_dns_policies_global_name",
            "name",
            unique=True,
            sqlite_where=text("tenant_id IS NULL"),
            postgresql_where=text("tenant_id IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # The owning tenant; None: a global one, seen by every tenant.
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(32))
    blocklists: Mapped[list[str]] = mapped_column(JSON, default=list)
    deny: Mapped[list[str]] = mapped_column(JSON, default=list)
    allow: Mapped[list[str]] = mapped_column(JSON, default=list)
    block_answer: Mapped[str] = mapped_column(String(16), default="nxdomain")
    anti_bypass: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class DnsQuery(Base):
    """The query log (bounded by age and row count; see the DNS runtime)."""

    __tablename__ = "dns_queries"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    peer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    peer: Mapped[str | None] = mapped_column(String(32))
    client: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    qtype: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    rcode: Mapped[str] = mapped_column(String(16))
    upstream: Mapped[str | None] = mapped_column(String(255))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    # Identical queries (client, name, type, outcome) answered from the cache or the
    # block set within one flush of the log (5 s) share a row; `at` is the first of them.
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


# ---- traffic metrics (issue 5): a small time-series store, one table per resolution.
# Core tables without rowid: the primary key (series, t) is the only index SQLite keeps,
# which holds a row near 20 bytes (docs/metrics.md). PostgreSQL ignores the SQLite option.
TRAFFIC_TIERS = ("raw", "5m", "1h", "1d")


def _traffic_table(name: str, key: str, parent: str) -> Table:
    return Table(
        name,
        Base.metadata,
        Column(
            key,
            Integer,
            ForeignKey(f"{parent}.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        Column("t", BigInteger, primary_key=True, autoincrement=False),
        Column("rx", BigInteger, nullable=False),
        Column("tx", BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )


PEER_TRAFFIC = {
    tier: _traffic_table(f"peer_traffic_{tier}", "peer_id", "peers") for tier in TRAFFIC_TIERS
}
INTERFACE_TRAFFIC = {
    tier: _traffic_table(f"interface_traffic_{tier}", "interface_id", "interfaces")
    for tier in TRAFFIC_TIERS
}


def _peer_key() -> Column[int]:
    """A metrics row's peer: part of its key, gone with the peer."""
    return Column(
        "peer_id",
        Integer,
        ForeignKey("peers.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )


# Classified traffic (issue 19): bytes, packets and flows per peer and class, both directions
# together (the kernel counts a flow's packets for its peer either way), in the same tiers.
PEER_APP_TRAFFIC = {
    tier: Table(
        f"peer_app_traffic_{tier}",
        Base.metadata,
        _peer_key(),
        Column("app", String(16), primary_key=True),
        Column("t", BigInteger, primary_key=True, autoincrement=False),
        Column("bytes", BigInteger, nullable=False),
        Column("packets", BigInteger, nullable=False),
        Column("flows", BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    for tier in TRAFFIC_TIERS
}


# Server names of classified flows (WIREWARDEN_CLASSIFY_NAMES): flows per peer, class and
# name by the hour, kept as long as the DNS query log (the same kind of record).
APP_NAMES = Table(
    "app_names",
    Base.metadata,
    _peer_key(),
    Column("app", String(16), primary_key=True),
    Column("name", String(253), primary_key=True),
    Column("t", BigInteger, primary_key=True, autoincrement=False),
    Column("flows", BigInteger, nullable=False),
    Index("ix_app_names_t", "t"),
    sqlite_with_rowid=False,
)


class AppCounters(Base):
    """The last kernel counters seen per peer address and conntrack mark (a class): the
    baseline of the next delta, kept in the transaction that records it."""

    __tablename__ = "app_counters"
    address: Mapped[str] = mapped_column(String(45), primary_key=True)
    mark: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    bytes: Mapped[int] = mapped_column(BigInteger)
    packets: Mapped[int] = mapped_column(BigInteger)
    flows: Mapped[int] = mapped_column(BigInteger)
    updated: Mapped[int] = mapped_column(BigInteger)


class PeerCounters(Base):
    """The last kernel counters seen per peer: the baseline of the next delta, kept in the
    transaction that records the delta so a restart neither loses nor repeats traffic."""

    __tablename__ = "peer_counters"
    peer_id: Mapped[int] = mapped_column(
        ForeignKey("peers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    public_key: Mapped[str] = mapped_column(String(44))
    rx: Mapped[int] = mapped_column(BigInteger)
    tx: Mapped[int] = mapped_column(BigInteger)
    handshake: Mapped[int] = mapped_column(BigInteger, default=0)
    endpoint: Mapped[str | None] = mapped_column(String(64))
    updated: Mapped[int] = mapped_column(BigInteger)


class PeerEndpoint(Base):
    """Each endpoint a peer was seen connecting from, from when."""

    __tablename__ = "peer_endpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peers.id", ondelete="CASCADE"), index=True)
    at: Mapped[int] = mapped_column(BigInteger)
    endpoint: Mapped[str] = mapped_column(String(64))


class TrafficRollup(Base):
    """How far each coarser tier has been rolled up: it holds every block below `until`."""

    __tablename__ = "traffic_rollups"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    until: Mapped[int] = mapped_column(BigInteger, default=0)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # admin | tenant-admin | member
    # The tenant a tenant-admin runs or a member belongs to; None for admins.
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # How many peers a member may own; None: no limit.
    device_limit: Mapped[int | None] = mapped_column(Integer)
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The user must enrol a second factor before reaching anything.
    totp_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last TOTP time step accepted, so a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UserSession(Base):
    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Sent back in forms and the X-CSRF-Token header; useless without the session cookie.
    csrf_token: Mapped[str] = mapped_column(String(64))
    # "full", or a half-open session: "totp" (password ok, code due) or "enrol" (must set 2FA up).
    stage: Mapped[str] = mapped_column(String(8), default="full")
    source: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ShareLink(Base):
    __tablename__ = "share_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peers.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    # The user who made the link (None: the CLI or a system token); their links end when
    # they are disabled, and go with them when they are deleted.
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_from: Mapped[str | None] = mapped_column(String(64))


class LoginThrottle(Base):
    """Sign-in attempts per key ("name:<name>" or "source:<address>") in the current window;
    counted in the database so that every request and every replica sees one count."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ExposedPort(Base):
    """A port of the server's public side forwarded to a peer (expose): alive until
    `expires_at`, which every heartbeat of the peer's client moves on."""

    __tablename__ = "mappings"
    __table_args__ = (
        # One public port per protocol and node: a double registration cannot happen.
        # Names share the front listener's port, so only port mappings hold one.
        Index(
            "uq_mappings_node_port",
            "node_id",
            "proto",
            "remote_port",
            unique=True,
            sqlite_where=text("hostname IS NULL"),
            postgresql_where=text("hostname IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    peer_id: Mapped[int] = mapped_column(ForeignKey("peers.id", ondelete="CASCADE"), index=True)
    proto: Mapped[str] = mapped_column(String(3))
    remote_port: Mapped[int] = mapped_column(Integer)
    # The port on the peer's tunnel address the server forwards to.
    local_port: Mapped[int] = mapped_column(Integer)
    # An HTTP service by name (blog.acme.<domain>): reached through the front listener
    # on `remote_port` (its HTTP or HTTPS port), not forwarded in the kernel. Unique: a
    # name leads to one service wherever it is asked for.
    hostname: Mapped[str | None] = mapped_column(String(253), unique=True)
    # The service speaks TLS: the front passes it through by SNI, never terminating it.
    tls: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # What another node's kernel counted for this forward, both ways, as its agent last
    # reported (this node's own is read live; None: not reported yet).
    forwarded_bytes: Mapped[int | None] = mapped_column(BigInteger)

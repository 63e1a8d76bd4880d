"""What every use case needs: sessions, the vault, the applier, who is acting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain.policy import PolicyConfig
from wirewarden.domain.state import DesiredState, DeviceDump
from wirewarden.services.applier import Applier
from wirewarden.services.errors import NotFound
from wirewarden.store.fleet import notify_node
from wirewarden.store.tables import AuditEvent, Node, Tenant, utcnow
from wirewarden.store.vault import Vault

ADMIN, TENANT_ADMIN, MEMBER = "admin", "tenant-admin", "member"
ROLES = (ADMIN, TENANT_ADMIN, MEMBER)


@dataclass(frozen=True)
class Actor:
    """Who asks and from where: the audit log's "who", and what services allow (access.py).

    The CLI and the system act as admin (they run on the host with the data dir); web
    requests build their Actor from the signed-in user or the token's owner.
    """

    name: str
    source: str = ""
    user_id: int | None = None
    role: str = ADMIN
    # The tenant a tenant-admin runs or a member belongs to.
    tenant_id: int | None = None
    # How they came in ("session", "token:<name>", "cli"), kept in the audit event's detail.
    via: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


SYSTEM = Actor("system", "local")


@dataclass
class Deps:
    sessions: sessionmaker[Session]
    vault: Vault
    # Where committed changes go: the node's data plane, now or through its agent.
    applier: Applier
    # The node's desired state as the database holds it (exports render from it).
    desired: Callable[[], DesiredState]
    node: str
    public_host: str | None
    # Live per-device counters; raises ApplyFailed when the data plane does not answer.
    stats: Callable[[], dict[str, DeviceDump]]
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    allocation: Allocation = field(default_factory=lambda: Allocation())
    # Where a tenant's interfaces get theirs.
    tenant_allocation: Allocation = field(
        default_factory=lambda: Allocation(IPv4Network("10.88.0.0/16"), 52820, 53819)
    )
    # The host's address towards the internet (the setup page's suggested public host).
    uplink_address: Callable[[], str | None] = lambda: None


@dataclass(frozen=True)
class Allocation:
    """Where a new interface's network and port come from when none is given."""

    pool: IPv4Network = field(default_factory=lambda: IPv4Network("10.8.0.0/16"))
    first_port: int = 51820
    last_port: int = 52819
    # /64s for the interfaces' IPv6 networks (a ULA network); None: IPv4 only.
    pool6: IPv6Network | None = None


def node_id(db: Session, node: str) -> int:
    found = db.scalar(select(Node.id).where(Node.name == node))
    if found is None:
        raise NotFound(f"node {node!r} is not registered")
    return found


# Core statements built once: every change runs both, and building an ORM statement (and
# flushing an ORM object) costs more than SQLite's work on these rows.
_NODES, _AUDIT = cast(Table, Node.__table__), cast(Table, AuditEvent.__table__)
_BUMP = (
    update(_NODES)
    .where(_NODES.c.id == bindparam("node"))
    .values(revision=_NODES.c.revision + 1)
    .returning(_NODES.c.revision, _NODES.c.name)
)
_INSERT_AUDIT = insert(_AUDIT)


def bump_revision(db: Session, node: int) -> int:
    """The node's revision moved on by one; returns the new one (what a Change carries).
    The node's agent sessions, on every replica, wake when the transaction commits."""
    revision, name = db.connection().execute(_BUMP, {"node": node}).one()
    notify_node(db, name)
    db.info.setdefault(_NAMES, {})[node] = name
    return int(revision)


def bump_all(db: Session) -> None:
    """Every node's revision moved on (what all of them serve changed: a DNS policy, an
    ACL profile), each node's agents woken at commit."""
    for node in db.scalars(select(Node.id)).all():
        bump_revision(db, node)


_NAMES = "wirewarden.node_names"


def node_name_of(db: Session, node: int) -> str:
    """The name of node `node` (what a Change names), known without a query when this
    transaction bumped its revision."""
    known: dict[int, str] = db.info.get(_NAMES, {})
    if node in known:
        return known[node]
    found = db.scalar(select(Node.name).where(Node.id == node))
    if found is None:
        raise NotFound(f"node {node} is not registered")
    return found


def audit(
    db: Session,
    actor: Actor,
    action: str,
    target: str,
    tenant_id: int | None = None,
    **detail: object,
) -> None:
    """One audit event. `tenant_id`: the tenant it concerns (its tenant admin reads it);
    by default the tenant of a tenant admin or member acting, none for an admin's own."""
    if tenant_id is None and not actor.is_admin:
        tenant_id = actor.tenant_id
    if actor.via:
        detail = {**detail, "via": actor.via}
    row = {
        "at": utcnow(),
        "actor": actor.name[:64],
        "source": actor.source[:64],
        "action": action,
        "target": target[:128],
        "detail": detail,
        "tenant_id": tenant_id,
    }
    db.connection().execute(_INSERT_AUDIT, row)


DEFAULT_TENANT = "default"


def tenant_id_of(db: Session, name: str | None) -> int | None:
    """The id of tenant `name` (None: the default tenant); None when there is no such one.
    The one place the default tenant is looked up by its name."""
    return db.scalar(select(Tenant.id).where(Tenant.name == (name or DEFAULT_TENANT)))


def ensure_defaults(sessions: sessionmaker[Session], node: str) -> None:
    """The default node and tenant exist from the first start on."""
    with sessions.begin() as db:
        if db.scalar(select(Node.id).where(Node.name == node)) is None:
            db.add(Node(name=node, revision=0))
        if tenant_id_of(db, None) is None:
            db.add(Tenant(name=DEFAULT_TENANT))


def page_of(
    db: Session, query: Select[Any], order: Any, limit: int, offset: int
) -> tuple[int, list[Any]]:
    """The total count of a filtered query and one ordered page of its rows."""
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    return total, list(db.scalars(query.order_by(order).limit(limit).offset(offset)).all())

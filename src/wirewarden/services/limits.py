"""A tenant's plan, enforced where it would be broken: the peer count in the transaction
that adds a peer (after taking the tenant's row: a row lock on PostgreSQL, the database
write lock on SQLite, so concurrent creates count one after another), and the per-peer
ceilings on what a tenant admin or member sets."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from wirewarden.domain.exposure import parse_ports
from wirewarden.services.context import Actor
from wirewarden.services.errors import Conflict, Forbidden, Invalid
from wirewarden.store.tables import ExposedPort, Interface, Peer, Plan, Tenant

# Per-peer fields a plan caps (the peer's column of the same name).
CEILINGS = ("rate_down_kbit", "rate_up_kbit", "data_cap_bytes")


def plan_of(db: Session, tenant_id: int) -> Plan | None:
    query = select(Plan).join(Tenant, Tenant.plan_id == Plan.id).where(Tenant.id == tenant_id)
    return db.scalar(query)


def reserve_peer(db: Session, tenant_id: int) -> Plan | None:
    """Take the tenant's row for this transaction and check there is room for one more
    peer; returns the plan (None: no plan). 409 naming the limit when full."""
    # A write, not SELECT ... FOR UPDATE: SQLite has no row locks, and a write takes its
    # database lock from here to the commit just as it takes the row on PostgreSQL.
    db.execute(update(Tenant).where(Tenant.id == tenant_id).values(enabled=Tenant.enabled))
    if db.scalar(select(Tenant.enabled).where(Tenant.id == tenant_id)) is False:
        raise Conflict("the tenant is disabled: enable it to add peers", "interface")
    plan = plan_of(db, tenant_id)
    if plan is None or plan.max_peers is None:
        return plan
    count = db.scalar(
        select(func.count())
        .select_from(Peer)
        .join(Interface, Peer.interface_id == Interface.id)
        .where(Interface.tenant_id == tenant_id)
    )
    if (count or 0) >= plan.max_peers:
        raise Conflict(
            f"the plan {plan.name!r} allows {plan.max_peers} peer(s) (max_peers)", "max_peers"
        )
    return plan


def defaults_for_new_peer(plan: Plan | None) -> dict[str, int]:
    """A new peer of a tenant on a plan starts at the plan's per-peer limits."""
    if plan is None:
        return {}
    return {f: getattr(plan, f) for f in CEILINGS if getattr(plan, f) is not None}


def check_ceilings(
    db: Session, tenant_id: int, changes: Mapping[str, object], actor: Actor
) -> None:
    """A tenant admin or member may not set a peer above its plan (nor unlimited under
    one): 422 naming the field. Admins set what they like."""
    if actor.is_admin:
        return
    plan = plan_of(db, tenant_id)
    if plan is None:
        return
    for field in CEILINGS:
        ceiling = getattr(plan, field)
        if field not in changes or ceiling is None:
            continue
        value = changes[field]
        if value is None or (isinstance(value, int) and value > ceiling):
            raise Invalid(f"{field}: the plan {plan.name!r} allows at most {ceiling}", field)


def check_expose_ports(db: Session, tenant_id: int, ports: str, actor: Actor) -> None:
    """A tenant admin may let a peer publish only ports of its plan's `expose_ports`."""
    if actor.is_admin:
        return
    plan = plan_of(db, tenant_id)
    if plan is None or plan.expose_ports is None:
        return
    if not parse_ports(ports).within(parse_ports(plan.expose_ports)):
        allowed = plan.expose_ports or "none"
        raise Invalid(
            f"expose_ports: the plan {plan.name!r} allows ports {allowed}", "expose_ports"
        )


def reserve_mapping(db: Session, tenant_id: int, port: int) -> None:
    """A new mapping fits the tenant's plan: its port among the plan's `expose_ports`, and
    fewer live mappings than `max_mappings` (counted after taking the tenant's row, as
    `reserve_peer` does: concurrent registrations count one after another)."""
    db.execute(update(Tenant).where(Tenant.id == tenant_id).values(enabled=Tenant.enabled))
    plan = plan_of(db, tenant_id)
    if plan is None:
        return
    if plan.expose_ports is not None and port not in parse_ports(plan.expose_ports):
        raise Forbidden(
            f"port {port} is not among the ports the plan {plan.name!r} publishes "
            f"({plan.expose_ports or 'none'})",
            "remote_port",
        )
    if plan.max_mappings is None:
        return
    live = db.scalar(
        select(func.count())
        .select_from(ExposedPort)
        .join(Peer, ExposedPort.peer_id == Peer.id)
        .join(Interface, Peer.interface_id == Interface.id)
        .where(Interface.tenant_id == tenant_id, ExposedPort.expires_at > func.now())
    )
    if (live or 0) >= plan.max_mappings:
        raise Conflict(
            f"the plan {plan.name!r} allows {plan.max_mappings} mapping(s) (max_mappings)",
            "max_mappings",
        )

"""Use cases of plans: what a tenant may have. Lowering a plan brings the peers of its
tenants down to the new per-peer ceilings in the same transaction, audited."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from wirewarden.domain.names import check_name
from wirewarden.services import access
from wirewarden.services.applier import FIREWALL, Change
from wirewarden.services.context import Actor, Deps, audit, bump_revision
from wirewarden.services.errors import Conflict, Invalid, NotFound
from wirewarden.services.plan_schemas import PlanIn, PlanOut
from wirewarden.services.schemas import apps_csv
from wirewarden.store.db import retry_on_busy
from wirewarden.store.desired import split_csv
from wirewarden.store.tables import Interface, Peer, Plan, Tenant

# The per-peer fields a plan caps: the peer's column of the same name.
PEER_CEILINGS = ("rate_down_kbit", "rate_up_kbit", "data_cap_bytes")


class PlanService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def list(self, actor: Actor) -> list[PlanOut]:
        access.require_admin(actor)
        with self.deps.sessions() as db:
            return [_out(db, row) for row in db.scalars(select(Plan).order_by(Plan.name))]

    def get(self, name: str, actor: Actor) -> PlanOut:
        access.require_admin(actor)
        with self.deps.sessions() as db:
            return _out(db, _find(db, name))

    @retry_on_busy
    def put(self, name: str, data: PlanIn, actor: Actor) -> tuple[PlanOut, bool]:
        """Create or replace a plan; (plan, created)."""
        access.require_admin(actor)
        try:
            check_name(name)
        except ValueError as exc:
            raise Invalid(f"plan name {exc}", "name") from exc
        with self.deps.sessions.begin() as db:
            row = db.scalar(select(Plan).where(Plan.name == name).with_for_update())
            created = row is None
            if row is None:
                row = Plan(name=name)
                db.add(row)
            # What reaches the kernel through every tenant on the plan (not per peer).
            terms_before = (row.block_apps or "", row.rate_total_down_kbit, row.rate_total_up_kbit)
            for field, value in data.model_dump().items():
                setattr(row, field, value)
            row.block_apps = apps_csv(data.block_apps)
            db.flush()
            audit(db, actor, "plan.put", name, **data.model_dump())
            lowered = 0 if created else lower_peers(db, row, actor)
            terms = (row.block_apps, row.rate_total_down_kbit, row.rate_total_up_kbit)
            reblocked = not created and terms != terms_before
            if reblocked:
                for node in _plan_nodes(db, row.id):
                    bump_revision(db, node)
            out = _out(db, row)
        if lowered or reblocked:
            # The lowered limits reach the kernel (several peers: a full pass).
            self.deps.applier.changed(Change.of(self.deps.node, None, FIREWALL))
        return out, created

    @retry_on_busy
    def delete(self, name: str, actor: Actor) -> None:
        access.require_admin(actor)
        with self.deps.sessions.begin() as db:
            row = _find(db, name)
            users = db.scalars(select(Tenant.name).where(Tenant.plan_id == row.id)).all()
            if users:
                raise Conflict(f"plan {name!r} is used by tenant(s) {', '.join(users)}", "name")
            db.delete(row)
            audit(db, actor, "plan.delete", name)


def _find(db: Session, name: str) -> Plan:
    row = db.scalar(select(Plan).where(Plan.name == name))
    if row is None:
        raise NotFound(f"plan {name!r} not found")
    return row


def _plan_nodes(db: Session, plan_id: int) -> list[int]:
    """The nodes holding an interface of a tenant on the plan."""
    query = (
        select(Interface.node_id)
        .join(Tenant, Interface.tenant_id == Tenant.id)
        .where(Tenant.plan_id == plan_id)
        .distinct()
    )
    return list(db.scalars(query).all())


def _out(db: Session, row: Plan) -> PlanOut:
    tenants = db.scalars(select(Tenant.name).where(Tenant.plan_id == row.id).order_by(Tenant.name))
    values = {f: getattr(row, f) for f in PlanIn.model_fields}
    values["block_apps"] = list(split_csv(row.block_apps))
    return PlanOut(name=row.name, tenants=list(tenants), updated_at=row.updated_at, **values)


def lower_peers(db: Session, plan: Plan, actor: Actor) -> int:
    """Peers of the plan's tenants above a per-peer ceiling (or unlimited under one) are set
    to it; every node holding one gets a new revision. Returns how many peers changed."""
    ifaces = select(Interface.id).join(Tenant, Interface.tenant_id == Tenant.id)
    ifaces = ifaces.where(Tenant.plan_id == plan.id)
    lowered: set[int] = set()
    for field in PEER_CEILINGS:
        ceiling = getattr(plan, field)
        if ceiling is None:
            continue
        column = getattr(Peer, field)
        over = (column.is_(None)) | (column > ceiling)
        ids = db.scalars(select(Peer.id).where(Peer.interface_id.in_(ifaces), over)).all()
        if ids:
            db.execute(update(Peer).where(Peer.id.in_(ids)).values({field: ceiling}))
            lowered.update(ids)
    if lowered:
        nodes = db.scalars(
            select(Interface.node_id)
            .join(Peer, Peer.interface_id == Interface.id)
            .where(Peer.id.in_(lowered))
            .distinct()
        ).all()
        for node in nodes:
            bump_revision(db, node)
        audit(db, actor, "plan.lower_peers", plan.name, peers=len(lowered))
    return len(lowered)

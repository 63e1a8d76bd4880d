"""Use cases of tenants: each with its own interface (t-<name>, a /24 of the tenant pool, a
port of the tenant range), a plan, a DNS policy; disabled (peers out of the kernel, data
kept) or deleted (interfaces, peers, users and kernel state gone). Admins manage tenants;
a tenant admin reads its own tenant only."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wirewarden.domain.names import check_ifname
from wirewarden.domain.policy import cap_period
from wirewarden.services import access
from wirewarden.services.applier import FIREWALL, INTERFACES, Change
from wirewarden.services.context import DEFAULT_TENANT, Actor, Deps, audit, bump_revision
from wirewarden.services.dns import DnsService
from wirewarden.services.errors import Conflict, Invalid, NotFound, ServiceError
from wirewarden.services.interfaces import InterfaceService
from wirewarden.services.plans import lower_peers
from wirewarden.services.policy import host_tz
from wirewarden.services.schemas import InterfaceCreate, apps_csv
from wirewarden.services.tenant_schemas import TenantCreate, TenantOut, TenantUpdate
from wirewarden.services.traffic import TrafficService
from wirewarden.store import scoped
from wirewarden.store.db import retry_on_busy
from wirewarden.store.desired import split_csv
from wirewarden.store.tables import AuditEvent, DnsPolicy, Interface, Peer, Plan, Tenant, User


def interface_name(tenant: str) -> str:
    return f"t-{tenant}"


class TenantService:
    def __init__(
        self,
        deps: Deps,
        interfaces: InterfaceService,
        dns: DnsService,
        traffic: TrafficService | None = None,
    ) -> None:
        self.deps, self.interfaces, self.dns, self.traffic = deps, interfaces, dns, traffic

    def list(self, actor: Actor) -> list[TenantOut]:
        with self.deps.sessions() as db:
            query = select(Tenant).where(access.tenant_filter(actor)).order_by(Tenant.name)
            return [self._out(db, row) for row in db.scalars(query)]

    def get(self, name: str, actor: Actor) -> TenantOut:
        with self.deps.sessions() as db:
            return self._out(db, self._find(db, name, actor))

    def create(self, data: TenantCreate, actor: Actor) -> TenantOut:
        """The tenant and its first interface, applied before answering; nothing is left
        behind when the interface cannot be made."""
        access.require_admin(actor)
        iface = interface_name(data.name)
        try:
            check_ifname(iface)
        except ValueError as exc:
            raise Invalid(f"name: its interface {iface!r} {exc}", "name") from exc
        tenant_id = self._insert(data, actor)
        spec = InterfaceCreate(
            name=iface,
            address=data.address,
            listen_port=data.listen_port,
            endpoint=data.endpoint,
            node=data.node,
        )
        try:
            self.interfaces.create(spec, actor, tenant=tenant_id)
        except ServiceError:
            self._forget(tenant_id)
            raise
        return self.get(data.name, actor)

    @retry_on_busy
    def _insert(self, data: TenantCreate, actor: Actor) -> int:
        with self.deps.sessions.begin() as db:
            if db.scalar(select(Tenant.id).where(Tenant.name == data.name)) is not None:
                raise Conflict(f"tenant {data.name!r} already exists", "name")
            row = Tenant(name=data.name, plan_id=_plan_id(db, data.plan))
            if data.dns_policy is not None:
                _check_policy(db, data.dns_policy, None)
                row.dns_policy = data.dns_policy
            db.add(row)
            try:
                db.flush()
            except IntegrityError as exc:
                raise Conflict(f"tenant {data.name!r} already exists", "name") from exc
            audit(db, actor, "tenant.create", data.name, row.id, plan=data.plan)
            return row.id

    def _forget(self, tenant_id: int) -> None:
        with self.deps.sessions.begin() as db:
            db.execute(delete(Tenant).where(Tenant.id == tenant_id))

    def update(self, name: str, data: TenantUpdate, actor: Actor) -> TenantOut:
        access.require_admin(actor)
        changes = data.model_dump(exclude_unset=True)
        with self.deps.sessions() as db:  # every field checked before anything is written
            tenant = self._find(db, name, actor)
            _plan_id(db, data.plan)
            if data.dns_policy is not None:
                _check_policy(db, data.dns_policy, tenant.id)
        if "dns_policy" in changes:
            # One path for a tenant's policy: the resolver reloads there.
            self.dns.set_tenant_policy(name, data.dns_policy, actor)
        if changes.keys() & {"plan", "enabled", "block_apps"}:
            self._update(name, data, changes, actor)
            # Applied before answering: a disabled tenant's peers are out when this returns.
            self.deps.applier.apply(Change.of(self.deps.node, None, INTERFACES, FIREWALL))
        return self.get(name, actor)

    @retry_on_busy
    def _update(
        self, name: str, data: TenantUpdate, changes: dict[str, object], actor: Actor
    ) -> None:
        with self.deps.sessions.begin() as db:
            row = self._find(db, name, actor)
            if "plan" in changes:
                row.plan_id = _plan_id(db, data.plan)
            if data.enabled is not None:
                row.enabled = data.enabled
            if data.block_apps is not None:
                row.block_apps = apps_csv(data.block_apps)
            db.flush()
            if row.plan_id is not None:
                plan = db.get(Plan, row.plan_id)
                if plan is not None:
                    lower_peers(db, plan, actor)
            for node in _nodes(db, row.id):
                bump_revision(db, node)
            audit(
                db, actor, "tenant.update", name, row.id, **{k: str(v) for k, v in changes.items()}
            )

    def delete(self, name: str, actor: Actor) -> None:
        """Its interfaces (and their peers and kernel state) first, then the tenant with
        its users and its own ACL profiles and DNS policies."""
        access.require_admin(actor)
        if name == DEFAULT_TENANT:
            raise Conflict("the default tenant always exists", "name")
        with self.deps.sessions() as db:
            tenant = self._find(db, name, actor)
            ifaces = db.scalars(select(Interface.name).where(Interface.tenant_id == tenant.id))
            names = list(ifaces)
        for iface in names:
            self.interfaces.delete(iface, actor)
        self._delete(name, actor)

    @retry_on_busy
    def _delete(self, name: str, actor: Actor) -> None:
        with self.deps.sessions.begin() as db:
            tenant = self._find(db, name, actor)
            if db.scalar(select(Interface.id).where(Interface.tenant_id == tenant.id)):
                raise Conflict(f"tenant {name!r} got a new interface meanwhile; try again")
            db.execute(delete(User).where(User.tenant_id == tenant.id))
            # The log stays (admins read it); SQLite may give this id to a later tenant.
            db.execute(
                update(AuditEvent).where(AuditEvent.tenant_id == tenant.id).values(tenant_id=None)
            )
            db.delete(tenant)
            audit(db, actor, "tenant.delete", name)

    def _find(self, db: Session, name: str, actor: Actor) -> Tenant:
        row = db.scalar(select(Tenant).where(Tenant.name == name))
        if row is None or not access.sees_tenant(actor, row.id):
            raise NotFound(f"tenant {name!r} not found")
        return row

    def _out(self, db: Session, row: Tenant) -> TenantOut:
        ifaces = db.scalars(
            select(Interface).where(Interface.tenant_id == row.id).order_by(Interface.name)
        ).all()
        peers = db.scalar(
            select(func.count())
            .select_from(Peer)
            .join(Interface, Peer.interface_id == Interface.id)
            .where(Interface.tenant_id == row.id)
        )
        plan = db.get(Plan, row.plan_id) if row.plan_id is not None else None
        return TenantOut(
            name=row.name,
            plan=plan.name if plan else None,
            dns_policy=row.dns_policy,
            enabled=row.enabled,
            block_apps=list(split_csv(row.block_apps)),
            peers=peers or 0,
            max_peers=plan.max_peers if plan else None,
            traffic_bytes=self._traffic(db, row.id),
            interfaces=[self.interfaces.to_out(db, i) for i in ifaces],
            created_at=row.created_at,
        )

    def _traffic(self, db: Session, tenant: int) -> int:
        """Its peers' bytes this period, each over its own cap period (as its usage shows)."""
        if self.traffic is None:
            return 0
        now, tz = datetime.now(UTC), host_tz(self.deps)
        query = select(Peer.id, Peer.cap_reset_day, Peer.cap_reset_at).join(Interface)
        rows = db.execute(query.where(Interface.tenant_id == tenant)).all()
        starts = {pid: cap_period(now, day, tz, at)[0] for pid, day, at in rows}
        return self.traffic.since_each(starts, now)


def _plan_id(db: Session, plan: str | None) -> int | None:
    if plan is None:
        return None
    found = db.scalar(select(Plan.id).where(Plan.name == plan))
    if found is None:
        raise Invalid(f"no plan named {plan!r}", "plan")
    return found


def _check_policy(db: Session, policy: str, tenant: int | None) -> None:
    if scoped.resolve(db, DnsPolicy, policy, tenant) is None:
        raise Invalid(f"no DNS policy named {policy!r}", "dns_policy")


def _nodes(db: Session, tenant: int) -> list[int]:
    query = select(Interface.node_id).where(Interface.tenant_id == tenant).distinct()
    return list(db.scalars(query))

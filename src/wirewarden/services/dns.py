"""Use cases for DNS filtering: policies, blocklists, the query log and its stats."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import Session

from wirewarden.dns.lists import ListStatus, ListStore, Progress
from wirewarden.domain.dnsstate import DEFAULT_POLICY
from wirewarden.domain.names import check_name
from wirewarden.services import access
from wirewarden.services.applier import DNS, FIREWALL, Change
from wirewarden.services.context import SYSTEM, Actor, Deps, audit, bump_all
from wirewarden.services.dns_schemas import (
    BlocklistOut,
    DnsPolicyIn,
    DnsPolicyOut,
    DnsQueryOut,
    DnsStats,
    GroupStats,
    NameCount,
)
from wirewarden.services.errors import Conflict, Forbidden, Invalid, NotFound
from wirewarden.services.schemas import Page
from wirewarden.store import scoped
from wirewarden.store.db import retry_on_busy
from wirewarden.store.tables import DnsPolicy, DnsQuery, Interface, Peer, Tenant

TOP = 10
# Outcomes that gave the client an answer, and those where it got none: a SERVFAIL is
# neither blocked nor allowed, and listing it as "Allowed" would hide an outage.
ANSWERED = ("resolved", "cached", "stale")
FAILED = ("servfail", "refused")


def policy_exists(db: Session, name: str) -> bool:
    """Whether a global policy of that name exists."""
    return scoped.find(db, DnsPolicy, name, None) is not None


def ensure_default_policy(db: Session) -> None:
    if not policy_exists(db, DEFAULT_POLICY):
        db.add(DnsPolicy(name=DEFAULT_POLICY, blocklists=[], deny=[], allow=[]))


def _list_out(status: ListStatus, actor: Actor = SYSTEM) -> BlocklistOut:
    data = asdict(status)
    data.pop("etag", None)
    data.pop("last_modified", None)
    if not actor.is_admin:
        # Lines of the list itself: for whoever manages the lists, not for every reader.
        data["junk_examples"] = []
    return BlocklistOut(**data)


class DnsService:
    def __init__(
        self, deps: Deps, lists: ListStore, reload: Callable[[], None] = lambda: None
    ) -> None:
        self.deps, self.lists, self.reload = deps, lists, reload

    # ---- policies

    def _find(self, db: Session, name: str, actor: Actor = SYSTEM) -> DnsPolicy:
        """The policy `name` means to the actor: an admin's global one; for anyone else
        their tenant's own, else the global one (another tenant's is not found)."""
        row = scoped.resolve(db, DnsPolicy, name, access.policy_scope(actor))
        if row is None:
            raise NotFound(f"DNS policy {name!r} not found")
        return row

    def _out(self, db: Session, row: DnsPolicy, actor: Actor = SYSTEM) -> DnsPolicyOut:
        # Peers counted within the actor's sight: a tenant admin never learns how many
        # peers of other tenants use a global policy.
        users = select(func.count()).select_from(Peer).join(Interface)
        users = users.where(_peers_using(row), access.interface_filter(actor))
        owner = row.tenant_id
        return DnsPolicyOut(
            name=row.name,
            tenant=scoped.tenant_names(db)[owner] if owner is not None else None,
            blocklists=list(row.blocklists),
            deny=list(row.deny),
            allow=list(row.allow),
            block_answer=row.block_answer,
            anti_bypass=row.anti_bypass,
            lists=[_list_out(self.lists.status(s), actor) for s in row.blocklists],
            peers=db.scalar(users) or 0,
            updated_at=row.updated_at,
        )

    def list_policies(self, actor: Actor = SYSTEM) -> list[DnsPolicyOut]:
        """The global policies and, for a tenant's user, their tenant's own."""
        with self.deps.sessions() as db:
            seen = scoped.visible_to(DnsPolicy, access.policy_scope(actor))
            order = (DnsPolicy.tenant_id.is_not(None), DnsPolicy.name)
            rows = db.scalars(select(DnsPolicy).where(seen).order_by(*order)).all()
            return [self._out(db, row, actor) for row in rows]

    def get_policy(self, name: str, actor: Actor = SYSTEM) -> DnsPolicyOut:
        with self.deps.sessions() as db:
            return self._out(db, self._find(db, name, actor), actor)

    def put_policy(self, name: str, data: DnsPolicyIn, actor: Actor) -> tuple[DnsPolicyOut, bool]:
        """Create or replace a policy of the actor's scope (an admin's are global, a tenant
        admin's their tenant's own); (policy, created). Lists new to this node are fetched
        first, and one that cannot be had fails the call (422, `blocklists`)."""
        access.require_manager(actor)
        try:
            check_name(name)
        except ValueError as exc:
            raise Invalid(f"policy name {exc}", "name") from exc
        access.check_blocklist_sources(actor, data.blocklists)
        self._fetch_new(data.blocklists)
        out, created = self._store_policy(name, data, actor)
        self._changed()
        return out, created

    @retry_on_busy
    def _store_policy(
        self, name: str, data: DnsPolicyIn, actor: Actor
    ) -> tuple[DnsPolicyOut, bool]:
        tenant = access.policy_scope(actor)
        with self.deps.sessions.begin() as db:
            row = scoped.find(db, DnsPolicy, name, tenant)
            created = row is None
            if row is None:
                row = DnsPolicy(name=name, tenant_id=tenant)
                db.add(row)
            row.blocklists, row.deny, row.allow = data.blocklists, data.deny, data.allow
            row.block_answer, row.anti_bypass = data.block_answer, data.anti_bypass
            bump_all(db)
            audit(db, actor, "dns.policy.put", name, tenant, **data.model_dump())
            db.flush()
            return self._out(db, row, actor), created

    def _fetch_new(self, sources: Iterable[str]) -> None:
        for source in sources:
            if self.lists.status(source).has_copy:
                continue
            status = self.lists.fetch(source)
            if status.error:
                raise Invalid(f"{source}: {status.error}", "blocklists")

    @retry_on_busy
    def delete_policy(self, name: str, actor: Actor) -> None:
        access.require_manager(actor)
        tenant = access.policy_scope(actor)
        if name == DEFAULT_POLICY and tenant is None:
            raise Conflict("the default policy always exists", "name")
        with self.deps.sessions.begin() as db:
            row = self._find(db, name, actor)
            if row.tenant_id != tenant:
                raise Forbidden(
                    f"policy {name!r} is shared by every tenant: only an admin may delete it"
                )
            users = db.scalar(
                select(func.count()).select_from(Peer).join(Interface).where(_peers_using(row))
            )
            tenants = db.scalar(select(func.count()).where(_tenants_using(row))) or 0
            if users or tenants:
                raise Conflict(
                    f"policy {name!r} is used by {users} peer(s) and {tenants} tenant(s)", "name"
                )
            db.delete(row)
            bump_all(db)
            audit(db, actor, "dns.policy.delete", name, tenant)
        self._changed()

    @retry_on_busy
    def set_tenant_policy(self, tenant: str, policy: str | None, actor: Actor) -> None:
        """A tenant's default policy: set by an admin, or by the tenant's own admin."""
        access.require_manager(actor)
        with self.deps.sessions.begin() as db:
            row = db.scalar(select(Tenant).where(Tenant.name == tenant))
            if row is None or not access.sees_tenant(actor, row.id):
                raise NotFound(f"tenant {tenant!r} not found")
            if policy is not None and scoped.resolve(db, DnsPolicy, policy, row.id) is None:
                raise Invalid(f"no DNS policy named {policy!r}", "policy")
            row.dns_policy = policy
            bump_all(db)
            audit(db, actor, "dns.tenant.policy", tenant, row.id, policy=policy)
        self._changed()

    def _changed(self) -> None:
        # The firewall's anti-bypass exemptions follow policies.
        self.deps.applier.changed(Change.of(self.deps.node, None, FIREWALL, DNS))
        self.reload()

    # ---- blocklists

    def sources(self, actor: Actor = SYSTEM) -> list[str]:
        """Blocklists in use: by any policy (an admin), or by those the actor may read
        (a tenant's user: the global ones and its tenant's own)."""
        query = select(DnsPolicy.blocklists)
        if not actor.is_admin:
            query = query.where(scoped.visible_to(DnsPolicy, access.policy_scope(actor)))
        with self.deps.sessions() as db:
            rows = db.scalars(query).all()
        return sorted({s for lists in rows for s in lists})

    def list_status(self, actor: Actor = SYSTEM) -> list[BlocklistOut]:
        return [_list_out(self.lists.status(s), actor) for s in self.sources(actor)]

    def refresh(
        self,
        sources: Iterable[str] | None = None,
        progress: Callable[[str], Progress] | None = None,
        actor: Actor | None = None,
    ) -> list[BlocklistOut]:
        """Fetch lists now (all in use, or those named); a failed one keeps its last copy."""
        access.require_manager(actor or SYSTEM)
        known = self.sources(actor or SYSTEM)
        wanted = list(sources) if sources is not None else known
        for source in wanted:
            if source not in known:
                raise NotFound(f"no policy uses the blocklist {source!r}")
        results = [self.lists.fetch(s, progress(s) if progress else None) for s in wanted]
        with self.deps.sessions.begin() as db:
            bump_all(db)  # a running resolver reloads the copies that changed
            if actor is not None:
                audit(db, actor, "dns.lists.refresh", ",".join(wanted))
        self.reload()
        return [_list_out(r, actor or SYSTEM) for r in results]

    # ---- query log and stats

    def queries(
        self,
        *,
        peer_id: int | None = None,
        policy: str | None = None,
        status: str | None = None,
        name: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        actor: Actor = SYSTEM,
    ) -> Page[DnsQueryOut]:
        access.require_manager(actor)  # a member's devices share the log with others'
        with self.deps.sessions() as db:
            query = self._filtered(db, select(DnsQuery), actor, peer_id, policy, since, until)
        if status:
            query = query.where(DnsQuery.status == status)
        if name:
            query = query.where(DnsQuery.name.contains(name.lower(), autoescape=True))
        with self.deps.sessions() as db:
            total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = db.scalars(query.order_by(DnsQuery.id.desc()).limit(limit).offset(offset)).all()
            items = [DnsQueryOut.model_validate(r, from_attributes=True) for r in rows]
        return Page(items=items, total=total, limit=limit, offset=offset)

    @staticmethod
    def _filtered(
        db: Session,
        query: Any,
        actor: Actor,
        peer_id: int | None,
        policy: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> Any:
        """The log rows the actor may read (a tenant's user: its peers' lookups only)."""
        query = query.where(access.dns_log_filter(actor))
        if peer_id is not None:
            query = query.where(DnsQuery.peer_id == peer_id)
        if policy:
            # The log holds fleet-wide names: a tenant's own policy is name.tenant there.
            tenant = access.policy_scope(actor)
            query = query.where(
                DnsQuery.policy == scoped.kernel_name(db, DnsPolicy, policy, tenant)
            )
        if since is not None:
            query = query.where(DnsQuery.at >= since)
        if until is not None:
            query = query.where(DnsQuery.at < until)
        return query

    def stats(
        self,
        since: datetime | None = None,
        peer_id: int | None = None,
        policy: str | None = None,
        actor: Actor = SYSTEM,
    ) -> DnsStats:
        access.require_manager(actor)  # top names are everyone's lookups
        since = since or datetime.now(UTC) - timedelta(days=1)
        # A row stands for `count` identical queries.
        queries = func.sum(DnsQuery.count)
        blocked = func.sum(case((DnsQuery.status == "blocked", DnsQuery.count), else_=0))

        with self.deps.sessions() as db:

            def where(q: Any) -> Any:
                return self._filtered(db, q, actor, peer_id, policy, since, None)

            counted = where(select(DnsQuery.status, queries).group_by(DnsQuery.status))
            by_status: dict[str, int] = {status: n for status, n in db.execute(counted).all()}
            top_blocked = self._top(db, where(select(DnsQuery.name)), ("blocked",))
            top_allowed = self._top(db, where(select(DnsQuery.name)), ANSWERED)
            top_failed = self._top(db, where(select(DnsQuery.name)), FAILED)
            peers = db.execute(
                where(
                    select(DnsQuery.peer_id, DnsQuery.peer, queries, blocked).group_by(
                        DnsQuery.peer_id, DnsQuery.peer
                    )
                )
            ).all()
            policies = db.execute(
                where(select(DnsQuery.policy, queries, blocked).group_by(DnsQuery.policy))
            ).all()
        total = sum(by_status.values())
        blocked_total = by_status.get("blocked", 0)
        return DnsStats(
            since=since,
            queries=total,
            blocked=blocked_total,
            blocked_share=_share(blocked_total, total),
            by_status=by_status,
            top_blocked=top_blocked,
            top_allowed=top_allowed,
            top_failed=top_failed,
            by_peer=[
                GroupStats(
                    key=p or "(unknown)",
                    peer_id=pid,
                    queries=n,
                    blocked=b or 0,
                    blocked_share=_share(b or 0, n),
                )
                for pid, p, n, b in peers
            ],
            by_policy=[
                GroupStats(key=p, queries=n, blocked=b or 0, blocked_share=_share(b or 0, n))
                for p, n, b in policies
            ],
        )

    @staticmethod
    def _top(db: Session, base: Select[Any], statuses: tuple[str, ...]) -> list[NameCount]:
        cond = DnsQuery.status.in_(statuses)
        count = func.sum(DnsQuery.count).label("n")
        rows = db.execute(
            base.add_columns(count)
            .where(cond)
            .group_by(DnsQuery.name)
            .order_by(count.desc(), DnsQuery.name)
            .limit(TOP)
        ).all()
        return [NameCount(name=name, count=n) for name, n in rows]


def _shadowing(row: DnsPolicy) -> Select[Any]:
    """Tenants with their own policy of the global `row`'s name (their peers mean that)."""
    own = DnsPolicy.name == row.name, DnsPolicy.tenant_id.is_not(None)
    return select(DnsPolicy.tenant_id).where(*own)


def _peers_using(row: DnsPolicy) -> ColumnElement[bool]:
    """Peers (joined with their interface) whose own policy is `row`."""
    same = Peer.dns_policy == row.name
    if row.tenant_id is not None:
        return and_(same, Interface.tenant_id == row.tenant_id)
    return and_(same, Interface.tenant_id.not_in(_shadowing(row)))


def _tenants_using(row: DnsPolicy) -> ColumnElement[bool]:
    same = Tenant.dns_policy == row.name
    if row.tenant_id is not None:
        return and_(same, Tenant.id == row.tenant_id)
    return and_(same, Tenant.id.not_in(_shadowing(row)))


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0

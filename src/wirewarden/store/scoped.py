"""Names scoped to a tenant: ACL profiles and DNS policies are owned by one tenant or are
global (tenant None). A tenant's peers see their tenant's own and the global ones, its own
first; the kernel and the resolver know each by a fleet-wide name (domain.names)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from wirewarden.domain.names import scoped_name
from wirewarden.store.tables import AclProfile, DnsPolicy, Tenant

Scoped = TypeVar("Scoped", AclProfile, DnsPolicy)


def owned_by(model: type[Scoped], tenant_id: int | None) -> ColumnElement[bool]:
    """Rows of exactly this scope (None: the global ones)."""
    if tenant_id is None:
        return model.tenant_id.is_(None)
    return model.tenant_id == tenant_id


def visible_to(model: type[Scoped], tenant_id: int | None) -> ColumnElement[bool]:
    """Rows a tenant's peers may use: its own and the global ones."""
    if tenant_id is None:
        return model.tenant_id.is_(None)
    return or_(model.tenant_id.is_(None), model.tenant_id == tenant_id)


def find(db: Session, model: type[Scoped], name: str, tenant_id: int | None) -> Scoped | None:
    """The row of that name in exactly this scope."""
    query = select(model).where(model.name == name, owned_by(model, tenant_id))
    return db.scalar(query)


def resolve(db: Session, model: type[Scoped], name: str, tenant_id: int | None) -> Scoped | None:
    """What `name` means to a tenant's peer: the tenant's own, else the global one."""
    if tenant_id is not None:
        own = find(db, model, name, tenant_id)
        if own is not None:
            return own
    return find(db, model, name, None)


def tenant_names(db: Session) -> dict[int, str]:
    return {tid: name for tid, name in db.execute(select(Tenant.id, Tenant.name)).all()}


class NameMap:
    """Fleet-wide names of one kind of scoped object, read once per desired-state pass."""

    def __init__(self, db: Session, model: type[Scoped]) -> None:
        self.tenants = tenant_names(db)
        rows = db.execute(select(model.tenant_id, model.name)).all()
        self.owned: set[tuple[int, str]] = {(t, n) for t, n in rows if t is not None}

    def kernel_name(self, name: str, tenant_id: int | None) -> str:
        """`name` as a peer of tenant `tenant_id` refers to it."""
        if tenant_id is not None and (tenant_id, name) in self.owned:
            return scoped_name(name, self.tenants[tenant_id])
        return name

    def of_row(self, tenant_id: int | None, name: str) -> str:
        """A row's own fleet-wide name."""
        return name if tenant_id is None else scoped_name(name, self.tenants[tenant_id])


def kernel_name(db: Session, model: type[Any], name: str, tenant_id: int | None) -> str:
    """One reference's fleet-wide name, for a single peer's change."""
    if tenant_id is None or find(db, model, name, tenant_id) is None:
        return name
    return scoped_name(name, db.scalar(select(Tenant.name).where(Tenant.id == tenant_id)))

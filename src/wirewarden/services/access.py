"""Who may see and change what, by role (the one place these rules live).

- admin: everything.
- tenant-admin: interfaces of their tenant and every peer on them; members of their tenant.
- member: reads the interfaces of their tenant, and sees and changes only peers they own.

Anything outside what an actor may see answers 404 exactly like a missing row, so ids of
other people's peers are not confirmed; a known thing the actor may see but not change is 403.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select, true

from wirewarden.services.context import ADMIN, MEMBER, TENANT_ADMIN, Actor
from wirewarden.services.errors import Forbidden, NotFound
from wirewarden.store.tables import AuditEvent, DnsQuery, Interface, Peer, Tenant


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only an admin may do this")


def require_manager(actor: Actor) -> None:
    """Admins and tenant-admins manage interfaces and users; members only their devices."""
    if actor.role not in (ADMIN, TENANT_ADMIN):
        raise Forbidden("members may only manage their own devices")


def interface_filter(actor: Actor) -> ColumnElement[bool]:
    if actor.is_admin:
        return true()
    return Interface.tenant_id == actor.tenant_id


def check_interface(actor: Actor, iface: Interface) -> None:
    if not actor.is_admin and iface.tenant_id != actor.tenant_id:
        raise NotFound(f"interface {iface.name!r} not found")


def check_peer(actor: Actor, peer: Peer, iface: Interface) -> None:
    visible = actor.is_admin or (
        iface.tenant_id == actor.tenant_id
        and (actor.role != MEMBER or peer.owner_id == actor.user_id)
    )
    if not visible:
        raise NotFound(f"peer {peer.id} not found")


def tenant_filter(actor: Actor) -> ColumnElement[bool]:
    return true() if actor.is_admin else Tenant.id == actor.tenant_id


def sees_tenant(actor: Actor, tenant_id: int | None) -> bool:
    return actor.is_admin or tenant_id == actor.tenant_id


def policy_scope(actor: Actor) -> int | None:
    """Whose DNS policies the actor reads and writes: an admin the global ones (None), a
    tenant's user their tenant's own (beside the global ones, which they read)."""
    return None if actor.is_admin else actor.tenant_id


def scope_key(actor: Actor) -> tuple[str, int | None]:
    """Actors who see the same things share it (for results kept for a while)."""
    if actor.is_admin:
        return (ADMIN, None)
    if actor.role == MEMBER:
        return (MEMBER, actor.user_id)
    return (actor.role, actor.tenant_id)


def visible_peers(actor: Actor) -> Select[Any]:
    """Ids of the peers the actor may see."""
    query = select(Peer.id).join(Interface, Peer.interface_id == Interface.id)
    return query.where(interface_filter(actor), own_peers(actor))


def dns_log_filter(actor: Actor) -> ColumnElement[bool]:
    """Query log rows: a tenant's user reads its visible peers' lookups only."""
    if actor.is_admin:
        return true()
    return DnsQuery.peer_id.in_(visible_peers(actor))


def check_blocklist_sources(actor: Actor, sources: list[str]) -> None:
    """Local lists (files in the data dir) are the admin's: a tenant's policies take
    http(s) lists only, or their contents and counts would show the admin's files."""
    if actor.is_admin:
        return
    for source in sources:
        if not source.startswith(("https://", "http://")):
            raise Forbidden(f"only an admin may use a local list: {source!r}", "blocklists")


def audit_filter(actor: Actor) -> ColumnElement[bool]:
    """Audit events: a tenant admin reads its tenant's and its own, a member their own."""
    if actor.is_admin:
        return true()
    own = AuditEvent.actor == actor.name
    if actor.role == TENANT_ADMIN:
        return or_(own, AuditEvent.tenant_id == actor.tenant_id)
    return own


def tenant_for_new(actor: Actor, default: Any) -> Any:
    """The tenant a new interface or user lands in: a tenant-admin's own, else `default`."""
    return default if actor.is_admin else actor.tenant_id


def own_peers(actor: Actor) -> ColumnElement[bool]:
    """Peers of an interface the actor already may see, narrowed to a member's own."""
    return Peer.owner_id == actor.user_id if actor.role == MEMBER else true()


# What a member may set on their own device. The rest (routes to networks behind the peer,
# expiry, policies, limits) is for whoever runs the interface: a member could otherwise lift
# their own limits or route other people's networks to themselves.
MEMBER_CREATE_FIELDS = frozenset(
    {
        "name",
        "display_name",
        "address",
        "allowed_ips",
        "persistent_keepalive",
        "public_key",
        "enabled",
    }
)
MEMBER_UPDATE_FIELDS = frozenset(
    {"name", "display_name", "enabled", "allowed_ips", "persistent_keepalive"}
)


def check_member_fields(actor: Actor, fields: set[str], allowed: frozenset[str]) -> None:
    if actor.role != MEMBER:
        return
    for field in sorted(fields - allowed):
        raise Forbidden(f"members may not set {field!r}", field)

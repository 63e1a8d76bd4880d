"""Who may see and change what, by role (the one place these rules live).

- admin: everything.
- tenant-admin: interfaces of their tenant and every peer on them; members of their tenant.
- member: reads the interfaces of their tenant, and sees and changes only peers they own.

Anything outside what an actor may see answers 404 exactly like a missing row, so ids of
other people's peers are not confirmed; a known thing the actor may see but not change is 403.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, true

from wirewarden.services.context import ADMIN, MEMBER, TENANT_ADMIN, Actor
from wirewarden.services.errors import Forbidden, NotFound
from wirewarden.store.tables import Interface, Peer


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

"""Use cases for WireGuard interfaces."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wirewarden.domain import addresses, ipam
from wirewarden.domain.keys import KeyPair, generate_keypair, public_key_of
from wirewarden.domain.render import server_config
from wirewarden.domain.state import HostFootprint
from wirewarden.services import access
from wirewarden.services.applier import INTERFACES, ApplyFailed, Change
from wirewarden.services.context import (
    SYSTEM,
    Actor,
    Allocation,
    Deps,
    audit,
    bump_revision,
    node_id,
    node_name_of,
    page_of,
    tenant_id_of,
)
from wirewarden.services.errors import Conflict, Invalid, NotFound, Unavailable, rendered
from wirewarden.services.schemas import InterfaceCreate, InterfaceOut, InterfaceUpdate, Page
from wirewarden.store.db import retry_on_busy
from wirewarden.store.tables import Interface, Node, Peer


@dataclass(frozen=True)
class Suggestion:
    name: str
    address: str  # e.g. 10.8.0.1/24
    gateway: str  # the interface's own address: where its filtering resolver answers
    listen_port: int
    uplink_address: str | None


def addresses_of(iface: Interface) -> tuple[str, ...]:
    return (iface.ipv4, *((iface.ipv6,) if iface.ipv6 else ()))


# Every request on an interface or its peers starts here: the statement is built once.
# Interface names are unique in the whole fleet: a name finds one on any node.
_BY_NAME = select(Interface).where(Interface.name == bindparam("name")).limit(1)


class InterfaceService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def find(self, db: Session, name: str, actor: Actor = SYSTEM) -> Interface:
        iface = db.scalar(_BY_NAME, {"name": name})
        if iface is None:
            raise NotFound(f"interface {name!r} not found")
        access.check_interface(actor, iface)
        return iface

    def to_out(self, db: Session, iface: Interface) -> InterfaceOut:
        count = db.scalar(select(func.count()).where(Peer.interface_id == iface.id)) or 0
        return InterfaceOut(
            name=iface.name,
            node=node_name_of(db, iface.node_id),
            address=", ".join(addresses_of(iface)),
            listen_port=iface.listen_port,
            public_key=iface.public_key,
            endpoint=iface.endpoint,
            dns=iface.dns,
            mtu=iface.mtu,
            enabled=iface.enabled,
            status=iface.sync_state,
            error=iface.sync_error,
            peer_count=count,
            created_at=iface.created_at,
        )

    def list(
        self, name: str | None = None, limit: int = 100, offset: int = 0, actor: Actor = SYSTEM
    ) -> Page[InterfaceOut]:
        with self.deps.sessions() as db:
            query = select(Interface).where(access.interface_filter(actor))
            if name:
                query = query.where(Interface.name.contains(name, autoescape=True))
            total, rows = page_of(db, query, Interface.name, limit, offset)
            return Page(
                items=[self.to_out(db, i) for i in rows], total=total, limit=limit, offset=offset
            )

    def none_yet(self) -> bool:
        """Whether this node has no interface at all (the first-run setup is due)."""
        with self.deps.sessions() as db:
            nid = node_id(db, self.deps.node)
            return db.scalar(select(Interface.id).where(Interface.node_id == nid).limit(1)) is None

    def suggestion(self, name: str = "wg0") -> Suggestion:
        """What a new interface would get by default: the first free subnet and port, as
        create() picks them, and the address this host reaches the internet from."""
        host = self._host(name)
        with self.deps.sessions() as db:
            others = db.scalars(
                select(Interface).where(Interface.node_id == node_id(db, self.deps.node))
            ).all()
            address = _free_v4(others, host, self.deps.allocation)
            port = _free_port(others, host, self.deps.allocation)
        gateway = str(ipaddress.ip_interface(address).ip)
        return Suggestion(name, address, gateway, port, self.deps.uplink_address())

    def get(self, name: str, actor: Actor = SYSTEM) -> InterfaceOut:
        with self.deps.sessions() as db:
            return self.to_out(db, self.find(db, name, actor))

    def create(
        self,
        data: InterfaceCreate,
        actor: Actor,
        private_key: str | None = None,
        reconcile: bool = True,
        tenant: int | None = None,
    ) -> InterfaceOut:
        """Store a new interface and, unless `reconcile` is False (the caller reconciles once
        it has added the peers too, as an import does), apply it before answering.
        `tenant`: an admin making a tenant's interface (its network from the tenant pool)."""
        access.require_manager(actor)
        node = data.node or self.deps.node
        if node != self.deps.node:
            access.require_admin(actor)  # where an interface runs is the fleet admin's
        local = node == self.deps.node
        # Another node's host is its own: what its kernel holds is not this one's to check.
        host = self._host(data.name) if local else HostFootprint()
        self._insert(data, actor, private_key, host, tenant)
        return self._reconciled(data.name) if reconcile else self.get(data.name)

    @retry_on_busy
    def _insert(
        self,
        data: InterfaceCreate,
        actor: Actor,
        private_key: str | None,
        host: HostFootprint,
        tenant: int | None = None,
    ) -> None:
        with self.deps.sessions.begin() as db:
            try:
                nid = node_id(db, data.node or self.deps.node)
            except NotFound as exc:
                raise Invalid(f"no node named {data.node!r}", "node") from exc
            # The node's row is written first: that write lock (SQLite's database lock, a
            # PostgreSQL row lock) makes concurrent allocations on a node take turns, each
            # reading what the one before it committed.
            bump_revision(db, nid)
            others = db.scalars(select(Interface).where(Interface.node_id == nid)).all()
            if db.scalar(_BY_NAME, {"name": data.name}) is not None:
                raise Conflict(f"interface {data.name!r} already exists", "name")
            tenant = tenant or self._named_tenant(db, data.tenant, actor)
            tenant = (
                tenant
                if actor.is_admin and tenant
                else access.tenant_for_new(actor, tenant_id_of(db, None))
            )
            pool = self._pool(db, tenant)
            port = data.listen_port or _free_port(others, host, pool)
            _check_port(others, port, None)
            ipv4, ipv6 = (
                _split_address(data.address)
                if data.address
                else (_free_v4(others, host, pool), _free_v6(others, pool))
            )
            _check_overlap(others, ipv4, ipv6, None)
            _check_host(data.name, (ipv4, ipv6), port, host)
            keys = (
                KeyPair(private_key, public_key_of(private_key))
                if private_key
                else generate_keypair()
            )
            iface = Interface(
                tenant_id=tenant,
                node_id=nid,
                name=data.name,
                ipv4=ipv4,
                ipv6=ipv6,
                listen_port=port,
                private_key_enc=self.deps.vault.encrypt(keys.private_key),
                public_key=keys.public_key,
                endpoint=data.endpoint,
                dns=data.dns,
                mtu=data.mtu,
            )
            db.add(iface)
            try:
                db.flush()
            except IntegrityError as exc:
                # A writer that skipped the node lock: the constraints still hold.
                field = "listen_port" if "port" in str(exc.orig) else "name"
                raise Conflict(f"the {field} was taken meanwhile; try again", field) from exc
            audit(db, actor, "interface.create", data.name, tenant, address=ipv4, port=port)

    def _named_tenant(self, db: Session, name: str | None, actor: Actor) -> int | None:
        if name is None:
            return None
        found = tenant_id_of(db, name)
        if found is None or not access.sees_tenant(actor, found):
            raise Invalid(f"no tenant named {name!r}", "tenant")
        return found

    def _pool(self, db: Session, tenant: int | None) -> Allocation:
        """The default tenant's interfaces come from the interface pool, every other
        tenant's from the tenant pool."""
        default = tenant_id_of(db, None)
        return self.deps.allocation if tenant == default else self.deps.tenant_allocation

    def update(self, name: str, data: InterfaceUpdate, actor: Actor) -> InterfaceOut:
        access.require_manager(actor)
        self._update(name, data, actor, self._host(name))
        return self._reconciled(name)

    @retry_on_busy
    def _update(self, name: str, data: InterfaceUpdate, actor: Actor, host: HostFootprint) -> None:
        changes = data.model_dump(exclude_unset=True)
        with self.deps.sessions.begin() as db:
            iface = self.find(db, name, actor)
            bump_revision(db, iface.node_id)  # first: allocations on a node take turns
            others = db.scalars(
                select(Interface).where(
                    Interface.node_id == iface.node_id, Interface.id != iface.id
                )
            ).all()
            if data.listen_port is not None and data.listen_port != iface.listen_port:
                _check_port(others, data.listen_port, iface.id)
                _check_host(name, (), data.listen_port, host)
                iface.listen_port = data.listen_port
            if data.address is not None:
                ipv4, ipv6 = _split_address(data.address)
                _check_overlap(others, ipv4, ipv6, iface.id)
                _check_host(name, (ipv4, ipv6), None, host)
                _check_peers_fit(db, iface, ipv4, ipv6)
                _renumber_peers(db, iface, ipv4)
                iface.ipv4, iface.ipv6 = ipv4, ipv6
            for field in ("endpoint", "dns", "mtu", "enabled"):
                if field in changes and changes[field] is not None:
                    setattr(iface, field, changes[field])
            if "endpoint" in changes and changes["endpoint"] is None:
                iface.endpoint = None
            iface.sync_state = "pending"
            audit(
                db,
                actor,
                "interface.update",
                name,
                iface.tenant_id,
                **{k: str(v) for k, v in changes.items()},
            )

    def delete(self, name: str, actor: Actor, teardown: bool = True) -> None:
        """Delete the interface; teardown=False forgets it but leaves the device running."""
        access.require_manager(actor)
        node = self._delete(name, actor, teardown)
        self.deps.applier.apply(Change.of(node, None, INTERFACES))

    @retry_on_busy
    def _delete(self, name: str, actor: Actor, teardown: bool) -> str:
        with self.deps.applier.turn(), self.deps.sessions() as db:
            iface = self.find(db, name, actor)
            node = node_name_of(db, iface.node_id)
            try:
                if teardown:
                    self.deps.applier.remove_interface(name)
            except ApplyFailed as exc:
                # Once deleted it is no longer ours to tear down: the kernel must go first.
                raise Unavailable(f"could not remove {name!r} from the data plane: {exc}") from exc
            db.delete(iface)
            bump_revision(db, iface.node_id)
            audit(db, actor, "interface.delete", name, iface.tenant_id)
            try:
                db.commit()
            except Exception:
                # Still stored, but torn down: the next pass brings the device back.
                self.deps.applier.changed(Change.of(node, None, INTERFACES))
                raise
            return node

    def set_enabled(self, name: str, enabled: bool, actor: Actor) -> InterfaceOut:
        return self.update(name, InterfaceUpdate(enabled=enabled), actor)

    def export(self, name: str, actor: Actor = SYSTEM) -> str:
        """The server side in wg-quick form (holds the private key: for backups and migration)."""
        access.require_manager(actor)
        desired = self.deps.desired()
        with self.deps.sessions() as db:
            iface = self.find(db, name, actor)
            rows = db.execute(
                select(Peer.public_key, Peer.name).where(Peer.interface_id == iface.id)
            ).all()
            names = {key: peer_name for key, peer_name in rows}
        state = desired.interfaces.get(name)
        if state is None:
            raise Conflict(f"interface {name!r} is disabled")
        return rendered(server_config, state, names)

    def _host(self, name: str) -> HostFootprint:
        """What the host holds outside our interfaces (and `name`, which may be adopted)."""
        with self.deps.sessions() as db:
            iface = db.scalar(_BY_NAME, {"name": name})
            if iface is not None and node_name_of(db, iface.node_id) != self.deps.node:
                return HostFootprint()  # another node's: its host is not this one
            ours = db.scalars(
                select(Interface.name).join(Node).where(Node.name == self.deps.node)
            ).all()
        return self.deps.applier.host_footprint(frozenset({*ours, name}))

    def _reconciled(self, name: str) -> InterfaceOut:
        # Interface changes are rare and touch links, addresses and the firewall: a full pass
        # applies them before the caller hears back.
        with self.deps.sessions() as db:
            iface = db.scalar(_BY_NAME, {"name": name})
            node = node_name_of(db, iface.node_id) if iface is not None else self.deps.node
        self.deps.applier.apply(Change.of(node, None, INTERFACES))
        return self.get(name)


def _split_address(text: str) -> tuple[str, str | None]:
    parts = [p.strip() for p in text.split(",")]
    v6 = next((p for p in parts if ":" in p), None)
    return next(p for p in parts if ":" not in p), v6


def _free_port(others: Sequence[Interface], host: HostFootprint, pool: Allocation) -> int:
    taken = {i.listen_port for i in others} | host.udp_ports
    for port in range(pool.first_port, pool.last_port + 1):
        if port not in taken:
            return port
    raise Conflict(
        f"no free port left in {pool.first_port}-{pool.last_port}; give a listen_port",
        "listen_port",
    )


def _check_port(others: Sequence[Interface], port: int, self_id: int | None) -> None:
    for other in others:
        if other.listen_port == port and other.id != self_id:
            raise Conflict(f"port {port} is used by interface {other.name!r}", "listen_port")


def _free_v4(others: Sequence[Interface], host: HostFootprint, pool: Allocation) -> str:
    used = [ipaddress.ip_interface(i.ipv4).network for i in others]
    size = max(24, pool.pool.prefixlen)
    for net in pool.pool.subnets(new_prefix=size):
        if not any(net.overlaps(u) for u in used) and not addresses.host_clash(net, host.networks):
            return f"{net.network_address + 1}/{size}"
    raise Conflict(f"no free /{size} left in {pool.pool}; give an address", "address")


def _free_v6(others: Sequence[Interface], pool: Allocation) -> str | None:
    if pool.pool6 is None:
        return None
    used = [ipaddress.ip_interface(i.ipv6).network for i in others if i.ipv6]
    for net in pool.pool6.subnets(new_prefix=max(64, pool.pool6.prefixlen)):
        if not any(net.overlaps(u) for u in used):
            return f"{net.network_address + 1}/{net.prefixlen}"
    raise Conflict(f"no free /64 left in {pool.pool6}; give an address", "address")


def _check_host(
    name: str, nets: tuple[str | None, ...], port: int | None, host: HostFootprint
) -> None:
    refusal = addresses.host_refusal(name, [n for n in nets if n], port, host)
    if refusal:
        field, reason = refusal
        raise Invalid(reason, field)


def _check_overlap(
    others: Sequence[Interface], ipv4: str, ipv6: str | None, self_id: int | None
) -> None:
    mine = [ipaddress.ip_interface(a).network for a in (ipv4, ipv6) if a]
    for other in others:
        theirs = [ipaddress.ip_interface(a).network for a in (other.ipv4, other.ipv6) if a]
        clash = any(m.version == t.version and m.overlaps(t) for m in mine for t in theirs)
        if clash and other.id != self_id:
            raise Conflict(f"the network overlaps interface {other.name!r}", "address")


def _check_peers_fit(db: Session, iface: Interface, ipv4: str, ipv6: str | None) -> None:
    pool = ipam.pool_for([a for a in (ipv4, ipv6) if a])
    for peer_v4, peer_v6 in db.execute(
        select(Peer.ipv4, Peer.ipv6).where(Peer.interface_id == iface.id)
    ).all():
        try:
            pool.index_of_v4(ipaddress.IPv4Address(peer_v4))
            if peer_v6:
                pool.check_v6(ipaddress.IPv6Address(peer_v6))
        except ipam.AddressError as exc:
            raise Conflict(
                f"peers would be left outside the new network: {exc}", "address"
            ) from exc


def _renumber_peers(db: Session, iface: Interface, ipv4: str) -> None:
    """Keep host indices relative to the (possibly moved) network base: the addresses stay."""
    old = int(ipaddress.ip_interface(iface.ipv4).network.network_address)
    new = int(ipaddress.ip_interface(ipv4).network.network_address)
    if old != new:
        # Both networks hold every peer (checked above), so the shift never collides mid-update.
        db.execute(
            update(Peer)
            .where(Peer.interface_id == iface.id)
            .values(host_index=Peer.host_index + (old - new))
            .execution_options(synchronize_session=False)
        )

"""Use cases for peers: allocation, keys, apply-before-answer, client configs."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from wirewarden.domain import addresses, ipam, tcplan
from wirewarden.domain.keys import generate_keypair, generate_preshared_key
from wirewarden.domain.names import config_file_name, slugify, unique_slug
from wirewarden.domain.policy import BUILTIN_PROFILES, PeerPolicy, cap_period
from wirewarden.domain.qr import config_qr_svg
from wirewarden.domain.render import ClientConfig, client_config
from wirewarden.domain.state import PeerState, PeerStats
from wirewarden.domain.traffic import is_online
from wirewarden.services import access, keyset, limits
from wirewarden.services.applier import ApplyFailed, Change
from wirewarden.services.context import (
    MEMBER,
    SYSTEM,
    Actor,
    Deps,
    audit,
    bump_revision,
    node_name_of,
)
from wirewarden.services.errors import Conflict, Forbidden, Invalid, NotFound, rendered
from wirewarden.services.interfaces import InterfaceService, addresses_of
from wirewarden.services.policy import UsageService, host_tz
from wirewarden.services.schemas import (
    NULLABLE,
    KeyPage,
    PeerCreate,
    PeerOut,
    PeerUpdate,
    apps_csv,
    split,
)
from wirewarden.services.sync_status import APPLIED, ERROR
from wirewarden.store import scoped
from wirewarden.store.db import insert_row, retry_on_busy
from wirewarden.store.desired import (
    inherit,
    policy_of,
    server_allowed_ips,
    split_csv,
    tenant_terms,
)
from wirewarden.store.tables import AclProfile, DnsPolicy, Interface, Node, Peer, Tenant, User

# Statements of the create path, built once (building costs as much as running them).
_CLASH = select(Peer.name, Peer.public_key).where(
    Peer.interface_id == bindparam("iface"),
    or_(Peer.name == bindparam("name"), Peer.public_key == bindparam("key")),
)
_HIGHEST = select(func.max(Peer.host_index)).where(Peer.interface_id == bindparam("iface"))


def is_expired(peer: Peer, now: datetime | None = None) -> bool:
    return peer.expires_at is not None and peer.expires_at <= (now or datetime.now(UTC))


class PeerService:
    def __init__(self, deps: Deps, interfaces: InterfaceService) -> None:
        self.deps = deps
        self.interfaces = interfaces

    # ---- reading

    def find(self, db: Session, peer_id: int, actor: Actor = SYSTEM) -> tuple[Peer, Interface]:
        row = db.execute(select(Peer, Interface).join(Interface).where(Peer.id == peer_id)).first()
        if row is None:
            raise NotFound(f"peer {peer_id} not found")
        access.check_peer(actor, row[0], row[1])
        return row[0], row[1]

    def get(self, peer_id: int, actor: Actor = SYSTEM) -> PeerOut:
        with self.deps.sessions() as db:
            peer, iface = self.find(db, peer_id, actor)
            return self.to_out(
                peer,
                iface.name,
                self._stats(iface.name),
                _owners(db, [peer]),
                node_name_of(db, iface.node_id),
            )

    def list(
        self,
        interface: str,
        name: str | None = None,
        limit: int = 100,
        offset: int = 0,
        actor: Actor = SYSTEM,
        after: str | None = None,
    ) -> KeyPage[PeerOut]:
        """A page of the interface's peers in name order: `offset` rows skipped after the
        cursor `after` (a page's `next`), or from the start without one."""
        with self.deps.sessions() as db:
            iface = self.interfaces.find(db, interface, actor)
            query = select(Peer).where(Peer.interface_id == iface.id, access.own_peers(actor))
            if name:
                query = query.where(Peer.name.contains(name, autoescape=True))
            total, rows, following = keyset.page(db, query, Peer.name, limit, offset, after)
            stats = self._stats(iface.name)
            owners = _owners(db, rows)
            node = node_name_of(db, iface.node_id)
            items = [self.to_out(p, iface.name, stats, owners, node) for p in rows]
            return KeyPage(items=items, total=total, limit=limit, offset=offset, next=following)

    def find_by_name(self, interface: str, name: str, actor: Actor = SYSTEM) -> PeerOut:
        with self.deps.sessions() as db:
            iface = self.interfaces.find(db, interface, actor)
            peer = db.scalar(select(Peer).where(Peer.interface_id == iface.id, Peer.name == name))
            if peer is None:
                raise NotFound(f"peer {name!r} not found on {interface!r}")
            access.check_peer(actor, peer, iface)
            return self.to_out(
                peer,
                iface.name,
                self._stats(iface.name),
                _owners(db, [peer]),
                node_name_of(db, iface.node_id),
            )

    def _stats(self, interface: str) -> dict[str, PeerStats]:
        try:
            dump = self.deps.stats().get(interface)
        except ApplyFailed:
            return {}
        return dump.stats if dump else {}

    def to_out(
        self,
        peer: Peer,
        interface: str,
        stats: dict[str, PeerStats],
        owners: dict[int, str] | None = None,
        node: str = "",
    ) -> PeerOut:
        live = stats.get(peer.public_key)
        handshake = live.latest_handshake if live else 0
        now = datetime.now(UTC)
        return PeerOut(
            id=peer.id,
            interface=interface,
            node=node,
            name=peer.name,
            display_name=peer.display_name or peer.name,
            address=", ".join(_peer_addresses(peer)),
            public_key=peer.public_key,
            allowed_ips=peer.allowed_ips,
            routed_ips=peer.routed_ips,
            persistent_keepalive=peer.persistent_keepalive,
            enabled=peer.enabled,
            expires_at=peer.expires_at,
            expired=is_expired(peer, now),
            has_private_key=peer.private_key_enc is not None,
            status="expired" if is_expired(peer, now) else peer.sync_state,
            error=peer.sync_error,
            endpoint=live.endpoint if live else None,
            latest_handshake=datetime.fromtimestamp(handshake, UTC) if handshake else None,
            online=is_online(handshake, now.timestamp()),
            rx_bytes=live.rx_bytes if live else 0,
            tx_bytes=live.tx_bytes if live else 0,
            acl=peer.acl,
            mesh=peer.mesh,
            rate_down_kbit=peer.rate_down_kbit,
            rate_up_kbit=peer.rate_up_kbit,
            data_cap_bytes=peer.data_cap_bytes,
            cap_reset_day=peer.cap_reset_day,
            dns_policy=peer.dns_policy,
            expose_ports=peer.expose_ports,
            block_apps=list(split_csv(peer.block_apps)),
            created_at=peer.created_at,
            updated_at=peer.updated_at,
            owner=(owners or {}).get(peer.owner_id) if peer.owner_id else None,
        )

    # ---- changing

    @retry_on_busy
    def create(
        self, interface: str, data: PeerCreate, actor: Actor, preshared_key: str | None = None
    ) -> PeerOut:
        access.check_member_fields(
            actor, set(data.model_fields_set), access.MEMBER_CREATE_FIELDS | {"owner"}
        )
        # The host lock from the first read on: concurrent creates then never pick the same
        # free address (nor pass a member's device limit together), and the kernel apply
        # below needs the lock anyway.
        with self.deps.applier.turn(), self.deps.sessions() as db:
            iface = self.interfaces.find(db, interface, actor)
            owner = self._owner_for_new(db, iface, data.owner, actor)
            data = self._with_slug(db, iface, data)
            self._check_unique(db, iface, data)
            plan = limits.reserve_peer(db, iface.tenant_id)
            pool = ipam.pool_for(addresses_of(iface))
            index, ipv6 = self._address(db, iface, pool, data.address)
            peer = self._new_peer(iface, pool, data, index, ipv6, preshared_key)
            peer.owner_id = owner.id if owner else None
            for field, value in limits.defaults_for_new_peer(plan).items():
                setattr(peer, field, value)
            try:
                insert_row(db, peer)
            except IntegrityError as exc:
                raise Conflict("the address or public key is already taken", "address") from exc
            revision = bump_revision(db, iface.node_id)
            audit(
                db,
                actor,
                "peer.create",
                f"{interface}/{data.name}",
                iface.tenant_id,
                address=peer.ipv4,
            )
            self._apply_and_commit(db, peer, iface, revision)
            owners = {owner.id: owner.name} if owner else None
            return self.to_out(peer, iface.name, {}, owners, node_name_of(db, iface.node_id))

    def _owner_for_new(
        self, db: Session, iface: Interface, name: str | None, actor: Actor
    ) -> User | None:
        """A member's device is theirs (up to their limit); a manager may name an owner."""
        if actor.role == MEMBER:
            me = db.get(User, actor.user_id)
            if me is None:
                raise Forbidden("your account no longer exists")
            if name is not None and name != me.name:
                raise Forbidden("members create devices for themselves only", "owner")
            owned = db.scalar(select(func.count()).where(Peer.owner_id == me.id)) or 0
            if me.device_limit is not None and owned >= me.device_limit:
                raise Forbidden(f"device limit reached ({me.device_limit})", "name")
            return me
        if name is None:
            return None
        user = db.scalar(select(User).where(User.name == name))
        if user is None or (user.tenant_id != iface.tenant_id and user.role != "admin"):
            raise Invalid(f"no user {name!r} in this interface's tenant", "owner")
        return user

    def _with_slug(self, db: Session, iface: Interface, data: PeerCreate) -> PeerCreate:
        """A peer given only a display name gets its slug from it, unique on the interface."""
        if data.name is not None:
            return data
        taken = set(db.scalars(select(Peer.name).where(Peer.interface_id == iface.id)))
        slug = unique_slug(slugify(data.display_name or ""), taken)
        return data.model_copy(update={"name": slug})

    def _check_unique(self, db: Session, iface: Interface, data: PeerCreate) -> None:
        # A NULL key compares equal to nothing: without a key, only the name can clash.
        params = {"iface": iface.id, "name": data.name, "key": data.public_key}
        clash = db.connection().execute(_CLASH, params).first()
        if clash is None:
            return
        if clash.name == data.name:
            raise Conflict(f"peer {data.name!r} already exists on {iface.name!r}", "name")
        raise Conflict("a peer with this public key exists", "public_key")

    def _new_peer(
        self,
        iface: Interface,
        pool: ipam.Pool,
        data: PeerCreate,
        index: int,
        ipv6: str | None,
        psk: str | None,
    ) -> Peer:
        vault = self.deps.vault
        private = None
        public = data.public_key
        if public is None:
            keys = generate_keypair()
            private, public = keys.private_key, keys.public_key
        return Peer(
            interface_id=iface.id,
            name=data.name,
            display_name=data.display_name,
            host_index=index,
            ipv4=str(pool.v4_at(index)),
            ipv6=ipv6,
            public_key=public,
            private_key_enc=vault.encrypt_opt(private),
            # A generated PSK only where we hand out the whole client config: a peer that
            # brought its own key (or was imported) could never learn it and would be locked out.
            preshared_key_enc=vault.encrypt_opt(
                psk or (generate_preshared_key() if private is not None else None)
            ),
            allowed_ips=data.allowed_ips,
            routed_ips=data.routed_ips,
            persistent_keepalive=data.persistent_keepalive,
            enabled=data.enabled,
            expires_at=data.expires_at,
            # No one sees the row before the commit that follows the kernel apply, and a failed
            # apply overwrites this: stating the likely outcome now spares an UPDATE per create.
            sync_state=APPLIED,
            sync_error=None,  # set, so that the commit after the apply finds nothing to update
        )

    def _address(
        self, db: Session, iface: Interface, pool: ipam.Pool, requested: str | None
    ) -> tuple[int, str | None]:
        v4, v6 = _parse_peer_address(requested) if requested else (None, None)
        try:
            index = pool.index_of_v4(v4) if v4 else self._allocate(db, iface, pool)
            if v6 is not None:
                pool.check_v6(v6)
        except ipam.AddressError as exc:
            raise Invalid(str(exc), "address") from exc
        if v4 and db.scalar(_taken(iface).where(Peer.host_index == index)):
            raise Conflict(f"{v4} is taken", "address")
        auto_v6 = pool.v6_at(index)
        ipv6 = str(v6) if v6 else (str(auto_v6) if auto_v6 else None)
        # An automatic IPv6 follows a free IPv4 index; only a hand-picked one (here or on an
        # earlier peer) can clash, and the unique constraint catches that at the flush.
        if v6 and db.scalar(_taken(iface).where(Peer.ipv6 == ipv6)):
            raise Conflict(f"{ipv6} is taken", "address")
        return index, ipv6

    def _allocate(self, db: Session, iface: Interface, pool: ipam.Pool) -> int:
        highest = db.connection().scalar(_HIGHEST, {"iface": iface.id})
        index = ipam.next_after(pool, highest)
        if index is None:  # the top of the range is used: look for a gap left by deleted peers
            indices = select(Peer.host_index).where(Peer.interface_id == iface.id)
            index = pool.first_free(db.scalars(indices.order_by(Peer.host_index)))
        if index is None:
            raise Conflict(f"no free address left in {pool.v4.network}", "address")
        return index

    @retry_on_busy
    def update(self, peer_id: int, data: PeerUpdate, actor: Actor) -> PeerOut:
        changes = data.model_dump(exclude_unset=True)
        access.check_member_fields(actor, set(changes), access.MEMBER_UPDATE_FIELDS)
        # The host lock before the first write (dataplane/lock.py: host lock, then the
        # database): the revision bump below takes SQLite's write lock, and waiting for the
        # host lock while holding it deadlocked with every writer that holds the host lock.
        with self.deps.applier.turn(), self.deps.sessions() as db:
            peer, iface = self.find(db, peer_id, actor)
            if data.name and data.name != peer.name:
                clash = select(Peer.id).where(Peer.interface_id == iface.id, Peer.name == data.name)
                if db.scalar(clash):
                    raise Conflict(f"peer {data.name!r} already exists", "name")
            live = _tenant_on(db, iface)
            old = self.policy_of(peer, iface, live)
            before = self.kernel_state(peer, iface, live)  # to undo with
            self._check_policy(db, peer, data, changes)
            limits.check_ceilings(db, iface.tenant_id, changes, actor)
            if data.expose_ports is not None:
                limits.check_expose_ports(db, iface.tenant_id, data.expose_ports, actor)
            dns = data.dns_policy
            if dns is not None and scoped.resolve(db, DnsPolicy, dns, iface.tenant_id) is None:
                raise Invalid(f"no DNS policy named {data.dns_policy!r}", "dns_policy")
            if changes.get("block_apps") is not None:
                changes["block_apps"] = apps_csv(changes["block_apps"])
            for field, value in changes.items():
                if value is not None or field in NULLABLE:
                    setattr(peer, field, value)
            revision = bump_revision(db, iface.node_id)
            audit(
                db,
                actor,
                "peer.update",
                f"{iface.name}/{peer.name}",
                iface.tenant_id,
                **{k: str(v) for k, v in changes.items()},
            )
            try:
                self._apply_and_commit(db, peer, iface, revision, old, before, live)
            except (StaleDataError, ObjectDeletedError) as exc:
                # Deleted by another writer (a replica, another process) since we read it.
                raise NotFound(f"peer {peer_id} not found") from exc
            return self.to_out(
                peer,
                iface.name,
                self._stats(iface.name),
                _owners(db, [peer]),
                node_name_of(db, iface.node_id),
            )

    def policy_of(self, peer: Peer, iface: Interface, live: bool = True) -> PeerPolicy | None:
        """The peer's policy as the kernel should hold it now (None: not in the kernel).
        `live`: its tenant is enabled (a disabled tenant's peers are out of the kernel)."""
        in_kernel = live and iface.enabled and peer.enabled and not is_expired(peer)
        if not in_kernel or peer.id is None:
            return None
        db = object_session(peer)
        acl = scoped.kernel_name(db, AclProfile, peer.acl, iface.tenant_id) if db else None
        policy = policy_of(peer, iface.name, datetime.now(UTC), host_tz(self.deps), acl)
        if db is None:
            return policy
        terms = tenant_terms(db, iface.tenant_id).get(iface.tenant_id) if iface.tenant_id else None
        return inherit(policy, terms)

    def _check_policy(
        self, db: Session, peer: Peer, data: PeerUpdate, changes: dict[str, object]
    ) -> None:
        tenant = db.scalar(select(Interface.tenant_id).where(Interface.id == peer.interface_id))
        custom = data.acl is not None and data.acl not in BUILTIN_PROFILES
        if custom and scoped.resolve(db, AclProfile, str(data.acl), tenant) is None:
            raise Invalid(f"no ACL profile named {data.acl!r}", "acl")
        limited = data.rate_down_kbit is not None or data.rate_up_kbit is not None
        if limited and tcplan.minor_of(peer.host_index) > tcplan.MAX_MINOR:
            raise Invalid("speed limits are for the first 65,533 addresses", "rate_down_kbit")
        cap = data.data_cap_bytes
        if cap is not None and "data_cap_bytes" in changes:
            now = datetime.now(UTC)
            start, _ = cap_period(now, peer.cap_reset_day, host_tz(self.deps), peer.cap_reset_at)
            used = UsageService(self.deps).used(peer, int(start.timestamp()))
            if cap < used:
                raise Invalid(
                    f"the cap is below this period's usage ({used} bytes); reset the usage "
                    "first or choose a higher cap",
                    "data_cap_bytes",
                )

    def set_enabled(self, peer_id: int, enabled: bool, actor: Actor) -> PeerOut:
        return self.update(peer_id, PeerUpdate(enabled=enabled), actor)

    @retry_on_busy
    def delete(self, peer_id: int, actor: Actor) -> None:
        with self.deps.applier.turn(), self.deps.sessions() as db:
            peer, iface = self.find(db, peer_id, actor)
            live = _tenant_on(db, iface)
            policy = self.policy_of(peer, iface, live)
            before = self.kernel_state(peer, iface, live)
            key, where = peer.public_key, (iface.name, iface.enabled)
            db.delete(peer)
            revision = bump_revision(db, iface.node_id)
            audit(db, actor, "peer.delete", f"{iface.name}/{peer.name}", iface.tenant_id)
            applied = True
            try:
                if iface.enabled:  # a disabled interface has no device to remove it from
                    self.deps.applier.remove_peer(iface.name, key)
            except ApplyFailed:
                applied = False  # the zombie pass removes it once the data plane answers
            try:
                db.commit()
            except Exception:
                # Still stored (a full disk, a busy database): it must stay in the kernel.
                db.rollback()
                self._undo(where, key, before, policy, policy)
                raise
            node = node_name_of(db, iface.node_id)
            self.deps.applier.changed(Change.of_peers(node, revision, [peer_id], applied=applied))

    def _apply_and_commit(
        self,
        db: Session,
        peer: Peer,
        iface: Interface,
        revision: int,
        old: PeerPolicy | None = None,
        before: PeerState | None = None,
        live: bool = True,
    ) -> None:
        """Apply to the kernel, then commit, under the host lock (see Reconciler.reconcile).

        A failed apply leaves the previous rules in force (one `nft -f` transaction) and the
        peer in the error state; the reconciler's next pass retries. A failed commit (a full
        disk, a busy database) puts the kernel back as it was (`before`: the peer as the
        kernel held it, None where it held none; `old`: its policy then), so nothing the
        database does not hold stays applied."""
        key, where, peer_id = peer.public_key, (iface.name, iface.enabled), peer.id
        new = self.policy_of(peer, iface, live)
        state = self.kernel_state(peer, iface, live)
        applied = True
        with self.deps.applier.turn():
            try:
                if not iface.enabled or not live:
                    # The interface is down, or its tenant disabled, on purpose: none of its
                    # peers is in the kernel, and a change does not bring one back.
                    pass
                elif state is not None:
                    self.deps.applier.set_peer(iface.name, state)
                else:
                    self.deps.applier.remove_peer(iface.name, peer.public_key)
                if old != new:
                    self.deps.applier.set_policy(old, new, self.deps.policy.leaf_qdisc)
            except ApplyFailed as exc:
                peer.sync_state, peer.sync_error = ERROR, str(exc)
                applied = False  # the node's next pass retries
            else:
                if (peer.sync_state, peer.sync_error) != (APPLIED, None):
                    # Only on a real change: setting even an equal value makes the commit
                    # flush the object, which costs a new peer's create a fifth of its time.
                    peer.sync_state, peer.sync_error = APPLIED, None
            try:
                db.commit()
            except Exception:
                db.rollback()
                self._undo(where, key, before, new, old)
                raise
        node = node_name_of(db, iface.node_id)
        change = Change.of_peers(node, revision, [peer_id], applied=applied)
        self.deps.applier.changed(change)

    def _undo(
        self,
        where: tuple[str, bool],
        key: str,
        before: PeerState | None,
        applied: PeerPolicy | None,
        previous: PeerPolicy | None,
    ) -> None:
        """Put one peer back in the kernel as it was before a change that was not stored."""
        applier = self.deps.applier
        name, enabled = where  # taken before the rollback, which expires the objects
        try:
            if enabled:
                if before is None:
                    applier.remove_peer(name, key)
                else:
                    applier.set_peer(name, before)
            if applied != previous:
                applier.set_policy(applied, previous, self.deps.policy.leaf_qdisc)
        except ApplyFailed:
            # The node converges to the database once its data plane answers.
            self.deps.applier.changed(Change(self.deps.node, None))

    def kernel_state(self, peer: Peer, iface: Interface, live: bool = True) -> PeerState | None:
        """The peer as its interface's device should hold it; None: not at all (`live`:
        its tenant is enabled). A disabled peer stays with no AllowedIPs (store/desired.py
        says why): blocked, its session kept, so enabling it again works at once."""
        if not live or not iface.enabled or is_expired(peer):
            return None
        if not peer.enabled:
            return PeerState(public_key=peer.public_key, allowed_ips=())
        return self.peer_state(peer)

    def peer_state(self, peer: Peer) -> PeerState:
        return PeerState(
            public_key=peer.public_key,
            allowed_ips=server_allowed_ips(peer.ipv4, peer.ipv6, peer.routed_ips),
            preshared_key=self.deps.vault.decrypt_opt(peer.preshared_key_enc),
        )

    # ---- client configs

    def config(self, peer_id: int, actor: Actor = SYSTEM) -> tuple[str, str]:
        """The client's `.conf` text and a file name for it."""
        with self.deps.sessions() as db:
            peer, iface = self.find(db, peer_id, actor)
            if peer.private_key_enc is None:
                raise Conflict(
                    "this peer's private key is not stored here (imported or brought its own key)"
                )
            endpoint = self._endpoint(iface, db.get(Node, iface.node_id))
            cfg = ClientConfig(
                private_key=self.deps.vault.decrypt(peer.private_key_enc),
                addresses=tuple(_peer_addresses(peer)),
                server_public_key=iface.public_key,
                endpoint=endpoint,
                allowed_ips=tuple(split(peer.allowed_ips)),
                preshared_key=self.deps.vault.decrypt_opt(peer.preshared_key_enc),
                dns=tuple(split(iface.dns)),
                mtu=iface.mtu if iface.mtu != 1420 else None,
                persistent_keepalive=peer.persistent_keepalive,
                name=peer.name,
            )
            return rendered(client_config, cfg), config_file_name(iface.name, peer.name)

    def qr(self, peer_id: int, actor: Actor = SYSTEM) -> str:
        return config_qr_svg(self.config(peer_id, actor)[0])

    def _endpoint(self, iface: Interface, node: Node | None) -> str:
        """The interface's endpoint, else its node's public host, else (on this control
        plane's own node only) WIREWARDEN_PUBLIC_HOST: never another machine's host."""
        here = node is None or node.name == self.deps.node
        public = node.public_host if node is not None else None
        host = iface.endpoint or public or (self.deps.public_host if here else None)
        if not host:
            where = "or WIREWARDEN_PUBLIC_HOST" if here else "or the node's --public-host"
            raise Conflict(
                f"interface {iface.name!r} has no endpoint: set one (PATCH endpoint) {where}",
                "endpoint",
            )
        try:
            name, port = addresses.endpoint(host)
        except addresses.AddressError as exc:
            # Stored before endpoints were checked strictly: never written into a config.
            raise Conflict(f"the endpoint cannot be used: {exc}", "endpoint") from exc
        return addresses.format_endpoint(name, port or iface.listen_port)


def _owners(db: Session, peers: list[Peer]) -> dict[int, str]:
    ids = {p.owner_id for p in peers if p.owner_id is not None}
    if not ids:
        return {}
    rows = db.execute(select(User.id, User.name).where(User.id.in_(ids)))
    return {uid: name for uid, name in rows}


def _peer_addresses(peer: Peer) -> list[str]:
    return [f"{peer.ipv4}/32", *([f"{peer.ipv6}/128"] if peer.ipv6 else [])]


def _taken(iface: Interface) -> Select[int]:
    return select(Peer.id).where(Peer.interface_id == iface.id)


def _parse_peer_address(
    text: str,
) -> tuple[ipaddress.IPv4Address | None, ipaddress.IPv6Address | None]:
    v4: ipaddress.IPv4Address | None = None
    v6: ipaddress.IPv6Address | None = None
    for part in split(text):
        try:
            iface = addresses.interface(part)
        except addresses.AddressError as exc:
            raise Invalid(f"{part!r} is not an IP address", "address") from exc
        if iface.network.prefixlen != iface.network.max_prefixlen:
            raise Invalid(f"{part!r}: a peer address is a single host (/32 or /128)", "address")
        if isinstance(iface, ipaddress.IPv4Interface):
            v4 = iface.ip
        else:
            v6 = iface.ip
    return v4, v6


def _tenant_on(db: Session, iface: Interface) -> bool:
    """Whether the interface's tenant is enabled (its peers belong in the kernel): the
    rule the desired state follows too (store/desired.py)."""
    enabled = db.scalar(select(Tenant.enabled).where(Tenant.id == iface.tenant_id))
    return enabled is not False

"""Reading the desired data-plane state of this node out of the database."""

from __future__ import annotations

import gc
import ipaddress
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain.addresses import host_of
from wirewarden.domain.dnsstate import DnsGuard
from wirewarden.domain.exposure import Forward
from wirewarden.domain.policy import (
    Cap,
    PeerPolicy,
    PolicyConfig,
    PolicyState,
    Profile,
    cap_period,
    profile_from_row,
)
from wirewarden.domain.state import DesiredState, InterfaceState, NatNetwork, PeerState
from wirewarden.domain.vhost import NameZone, NodeNames, Route
from wirewarden.store.db import begin_snapshot
from wirewarden.store.fleet import revision_of
from wirewarden.store.scoped import NameMap
from wirewarden.store.tables import (
    AclProfile,
    ExposedPort,
    Interface,
    Node,
    Peer,
    Plan,
    Tenant,
    utcnow,
)
from wirewarden.store.vault import Vault

_PEER_COLUMNS = (
    Peer.interface_id,
    Peer.public_key,
    Peer.preshared_key_enc,
    Peer.ipv4,
    Peer.ipv6,
    Peer.routed_ips,
    Peer.enabled,
    Peer.expires_at,
    Peer.id,
    Peer.host_index,
    Peer.acl,
    Peer.mesh,
    Peer.rate_down_kbit,
    Peer.rate_up_kbit,
    Peer.data_cap_bytes,
    Peer.cap_reset_day,
    Peer.cap_reset_at,
    Peer.cap_used_bytes,
    Peer.cap_used_period,
    Peer.block_apps,
)


def split_csv(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def server_allowed_ips(ipv4: str, ipv6: str | None, routed: str | None) -> tuple[str, ...]:
    own = (f"{ipv4}/32", f"{ipv6}/128") if ipv6 else (f"{ipv4}/32",)
    return own + split_csv(routed) if routed else own


def network_of(cidr: str) -> str:
    return str(ipaddress.ip_interface(cidr).network)


@dataclass
class _Cached:
    revision: int
    valid_until: datetime | None
    state: DesiredState
    # Enabled interfaces by id, and where each peer in `state` sits (interface, key): what
    # a delta needs to replace a peer without reading the others.
    names: dict[int, str] = field(default_factory=dict)
    where: dict[int, tuple[str, str]] = field(default_factory=dict)
    # Interfaces whose tenant is enabled (the others stay up without peers), and each
    # enabled interface's tenant (a peer's ACL name is its tenant's).
    peered: frozenset[int] = frozenset()
    tenant_of: dict[str, int] = field(default_factory=dict)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


class DesiredStateReader:
    """Builds DesiredState; reuses the last one while the revision and expiries allow."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        vault: Vault,
        node: str,
        uplink: str | None,
        clock: Callable[[], datetime] = utcnow,
        policy: PolicyConfig | None = None,
        dns_guard: Callable[[Session], DnsGuard] | None = None,
        expose_listen: tuple[str, ...] = (),
        names: NameZone | None = None,
    ) -> None:
        self.sessions, self.vault, self.node = sessions, vault, node
        self.expose_listen = expose_listen
        # Where the control plane publishes names: a fleet node's state carries those of
        # its peers, which its own front serves (None: no names in the state).
        self.names = names
        self.uplink, self.clock = uplink, clock
        self.policy = policy or PolicyConfig()
        self.dns_guard = dns_guard
        self._cache: _Cached | None = None
        # Peer ids each revision changed, as its writer told us (note()); a revision not
        # noted here (another process, a whole-section change) means a full read.
        self._notes: dict[int, frozenset[int]] = {}
        self._notes_lock = threading.Lock()
        self.full_reads = 0
        # The peers the last read re-read (empty: none, the cache held the revision; None:
        # it read everything): what a reader of other per-peer rows may re-read alone.
        self.last_delta: frozenset[int] | None = None

    def note(self, revision: int, peers: frozenset[int]) -> None:
        """Revision `revision` changed only these peers: the next read re-reads just them."""
        with self._notes_lock:
            self._notes[revision] = peers

    def revision(self) -> int:
        with self.sessions() as db:
            return revision_of(db, self.node)

    def __call__(self) -> DesiredState:
        with self.pinned() as pin:
            pin.begin()
            return pin.read()

    @contextmanager
    def pinned(self) -> Iterator[_Pin]:
        with self.sessions() as db:
            yield _Pin(self, db)

    def _cached(self, revision: int, now: datetime, db: Session) -> DesiredState:
        cached = self._cache
        fresh = cached and (cached.valid_until is None or now < cached.valid_until)
        if cached and fresh and cached.revision == revision:
            self.last_delta = frozenset()
            return cached.state
        peers = self._delta(cached.revision, revision) if cached and fresh else None
        if cached is not None and peers is not None:
            self._cache = self._patch(db, cached, revision, now, peers)
        else:
            self._cache = self._read(db, revision, now)
            self.full_reads += 1
            self._forget(revision)
        self.last_delta = peers
        return self._cache.state

    def _forget(self, revision: int) -> None:
        """Notes of revisions a read has covered are of no more use."""
        with self._notes_lock:
            for r in [r for r in self._notes if r <= revision]:
                del self._notes[r]

    def _delta(self, since: int, revision: int) -> frozenset[int] | None:
        """The peers changed from `since` to `revision`, if every step between was noted."""
        with self._notes_lock:
            steps = range(since + 1, revision + 1)
            known = revision > since and all(r in self._notes for r in steps)
            peers = frozenset().union(*(self._notes[r] for r in steps)) if known else None
        self._forget(revision)
        return peers

    def _patch(
        self, db: Session, cached: _Cached, revision: int, now: datetime, ids: frozenset[int]
    ) -> _Cached:
        """The cached state with these peers read again (gone, changed or new)."""
        state, where = cached.state, dict(cached.where)
        peers = {name: i.peers for name, i in state.interfaces.items()}
        copied: set[str] = set()

        def own(name: str) -> dict[str, PeerState]:
            if name not in copied:  # copy on write: the last state may still be in use
                peers[name] = dict(peers[name])
                copied.add(name)
            return peers[name]

        for peer_id in ids & where.keys():
            name, key = where.pop(peer_id)
            own(name).pop(key, None)
        query = select(*_PEER_COLUMNS).where(Peer.id.in_(ids), Peer.interface_id.in_(cached.peered))
        rows = db.connection().execute(query).all()
        fresh: list[PeerPolicy] = []
        found: dict[int, dict[str, PeerState]] = {i: {} for i in cached.names}
        expiry = self._collect_peers(rows, found, now, cached.names, fresh, where)
        acls, terms = NameMap(db, AclProfile), tenant_terms(db)
        fresh = [_scoped(p, acls, terms, cached.tenant_of) for p in fresh]
        for iface_id, new in found.items():
            if new:
                own(cached.names[iface_id]).update(new)
        kept = tuple(p for p in state.policy.peers if p.peer_id not in ids)
        interfaces = {
            name: replace(i, peers=peers[name]) if name in copied else i
            for name, i in state.interfaces.items()
        }
        guard = self.dns_guard(db) if self.dns_guard and interfaces else None
        # A peer's change can change its forwards (disabled, its routes): one small query.
        forwards, lease_end = _forwards(db, cached.peered, now)
        patched = replace(
            state,
            interfaces=interfaces,
            revision=revision,
            policy=replace(state.policy, peers=kept + tuple(fresh)),
            dns_guard=guard,
            forwards=forwards,
            names=self._names(db, cached.peered, now),
        )
        valid = _earliest(_earliest(cached.valid_until, expiry), lease_end)
        return replace(cached, revision=revision, valid_until=valid, state=patched, where=where)

    def _read(self, db: Session, revision: int, now: datetime) -> _Cached:
        # Tens of thousands of new objects, none of them garbage: collections started by
        # their allocation would only walk the heap (a quarter of the read at 10k peers).
        with _collection_paused():
            return self._read_all(db, revision, now)

    def _read_all(self, db: Session, revision: int, now: datetime) -> _Cached:
        ifaces = db.scalars(select(Interface).join(Node).where(Node.name == self.node)).all()
        by_id = {i.id: i for i in ifaces if i.enabled}
        peers: dict[int, dict[str, PeerState]] = {i: {} for i in by_id}
        # A disabled tenant's interfaces stay up, without a peer.
        off = set(db.scalars(select(Tenant.id).where(Tenant.enabled.is_(False))))
        with_peers = [i for i, iface in by_id.items() if iface.tenant_id not in off]
        # Through the connection: the ORM's row handling would cost more than the rows.
        query = select(*_PEER_COLUMNS).where(Peer.interface_id.in_(with_peers))
        rows = db.connection().execute(query).all()
        names = {i: iface.name for i, iface in by_id.items()}
        policies: list[PeerPolicy] = []
        where: dict[int, tuple[str, str]] = {}
        acls = NameMap(db, AclProfile)
        next_expiry = self._collect_peers(rows, peers, now, names, policies, where)
        tenant_of = {iface.name: iface.tenant_id for iface in by_id.values()}
        terms = tenant_terms(db)
        policies = [_scoped(p, acls, terms, tenant_of) for p in policies]
        interfaces = {
            i.name: InterfaceState(
                name=i.name,
                private_key=self.vault.decrypt(i.private_key_enc),
                listen_port=i.listen_port,
                addresses=(i.ipv4, *((i.ipv6,) if i.ipv6 else ())),
                mtu=i.mtu,
                peers=peers[i.id],
            )
            for i in by_id.values()
        }
        nat = tuple(_nat_networks(by_id.values()))
        managed = frozenset(i.name for i in ifaces)
        policy = self._policy(db, policies, by_id.values(), acls)
        guard = self.dns_guard(db) if self.dns_guard and interfaces else None
        forwards, lease_end = _forwards(db, with_peers, now)
        state = DesiredState(
            interfaces,
            managed,
            nat,
            self.uplink,
            revision,
            policy,
            dns_guard=guard,
            forwards=forwards,
            expose_listen=self.expose_listen,
            names=self._names(db, with_peers, now),
        )
        # Read again when the first peer or lease expires, whatever the revision says.
        valid = _earliest(next_expiry, lease_end)
        peered = frozenset(with_peers)
        return _Cached(revision, valid, state, names, where, peered, tenant_of)

    def _names(self, db: Session, ifaces: Iterable[int], now: datetime) -> NodeNames | None:
        zone = self.names
        if zone is None:
            return None
        rows = live_names(db, now, Peer.interface_id.in_(list(ifaces)))
        routes = sorted((n.host, n.route) for n in rows)
        return NodeNames(zone.http_port, zone.https_port, tuple(routes))

    def _tz(self) -> tzinfo:
        return self.policy.tz or datetime.now().astimezone().tzinfo or UTC

    def _policy(
        self,
        db: Session,
        peers: list[PeerPolicy],
        ifaces: Iterable[Interface],
        acls: NameMap,
    ) -> PolicyState:
        rows = db.execute(
            select(
                AclProfile.tenant_id, AclProfile.name, AclProfile.rules, AclProfile.default_action
            )
        ).all()
        profiles: tuple[Profile, ...] = tuple(
            profile_from_row(acls.of_row(tenant, name), rules, default)
            for tenant, name, rules, default in rows
        )
        ifaces = list(ifaces)
        gateways = tuple((i.name, host_of(a)) for i in ifaces for a in (i.ipv4, i.ipv6) if a)
        tenants: dict[int | None, list[str]] = {}
        for i in ifaces:
            tenants.setdefault(i.tenant_id, []).append(i.name)
        cfg = self.policy
        return PolicyState(
            peers=tuple(peers),
            profiles=profiles,
            lan_networks=cfg.lan_networks,
            gateways=gateways,
            cap_action=cfg.cap_action,
            throttle_kbit=cfg.throttle_kbit,
            leaf_qdisc=cfg.leaf_qdisc,
            interfaces=tuple(sorted(i.name for i in ifaces)),
            tenants=tuple(sorted(tuple(sorted(names)) for names in tenants.values())),
        )

    def _collect_peers(
        self,
        rows: Iterable[Any],
        out: dict[int, dict[str, PeerState]],
        now: datetime,
        names: dict[int, str],
        policies: list[PeerPolicy],
        where: dict[int, tuple[str, str]],
    ) -> datetime | None:
        next_expiry: datetime | None = None
        tz = self._tz()
        for row in rows:
            # Every column of _PEER_COLUMNS by name, in its order (a plain unpack: a Row's
            # attributes cost ~1.5 µs each, 10,000 rows a pass); one added there fails here
            # loudly rather than shifting the others.
            (
                iface_id, key, psk, ipv4, ipv6, routed, enabled, expires_at,
                peer_id, _index, _acl, _mesh, _down, _up,
                cap_bytes, reset_day, reset_at, _used, _used_period, _block_apps,
            ) = row  # fmt: skip
            if expires_at is not None and expires_at > now:
                next_expiry = expires_at if next_expiry is None else min(next_expiry, expires_at)
            if expires_at is not None and expires_at <= now:
                continue
            if not enabled:
                # Kept on the interface with no AllowedIPs: WireGuard drops every packet
                # from it and routes none to it, yet its session lives on, so re-enabling
                # (AllowedIPs back) works at once instead of after the client's next
                # handshake, 5-25 s or more away. Delete removes the key.
                out[iface_id][key] = PeerState(public_key=key, allowed_ips=())
                where[peer_id] = (names[iface_id], key)  # a delta replaces or deletes it
                continue
            out[iface_id][key] = PeerState(
                public_key=key,
                allowed_ips=server_allowed_ips(ipv4, ipv6, routed),
                preshared_key=self.vault.decrypt_opt(psk),
            )
            policies.append(peer_policy(names[iface_id], row, now, tz))
            where[peer_id] = (names[iface_id], key)
            if cap_bytes is not None:  # a capped peer: its quota changes at the period's end
                end = cap_period(now, reset_day or 1, tz, reset_at)[1]
                next_expiry = end if next_expiry is None else min(next_expiry, end)
        return next_expiry


class _Pin:
    """One read transaction: every statement sees the database as of begin()."""

    def __init__(self, reader: DesiredStateReader, db: Session) -> None:
        self.reader, self.db = reader, db
        self.revision, self.now = 0, reader.clock()

    def begin(self) -> frozenset[str]:
        begin_snapshot(self.db)
        self.now = self.reader.clock()
        node = self.reader.node
        self.revision = revision_of(self.db, node)
        names = select(Interface.name).join(Node).where(Node.name == node)
        return frozenset(self.db.scalars(names))

    def read(self) -> DesiredState:
        return self.reader._cached(self.revision, self.now, self.db)


@contextmanager
def _collection_paused() -> Iterator[None]:
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _forwards(
    db: Session, ifaces: Iterable[int], now: datetime
) -> tuple[tuple[Forward, ...], datetime | None]:
    """Live mappings of enabled peers on this node's enabled interfaces, and when the
    first of them runs out (the state is read again then, reaper or not)."""
    rows = db.execute(
        select(ExposedPort, Peer.ipv4, Peer.allowed_ips)
        .join(Peer, ExposedPort.peer_id == Peer.id)
        .where(
            Peer.interface_id.in_(list(ifaces)),
            Peer.enabled,
            ExposedPort.expires_at > now,
            ExposedPort.hostname.is_(None),  # names go through the front listener
            (Peer.expires_at.is_(None)) | (Peer.expires_at > now),
        )
    ).all()
    forwards = tuple(
        Forward.of(m.proto, m.remote_port, ipv4, m.local_port, split_csv(allowed))
        for m, ipv4, allowed in rows
    )
    ends = [m.expires_at for m, _, _ in rows]
    return forwards, min(ends) if ends else None


@dataclass(frozen=True)
class LiveName:
    """A published name whose peer and lease are live: where its peer is."""

    id: int
    host: str
    address: str  # the peer's tunnel address (CIDR)
    port: int  # the port on it
    tls: bool
    node_id: int
    public_host: str | None  # its node's, as the operator set it

    @property
    def route(self) -> Route:
        """Straight to the peer, as its own node's front passes a visitor."""
        return Route(self.id, host_of(self.address), self.port, self.tls)


def live_names(db: Session, now: datetime, *where: ColumnElement[bool]) -> list[LiveName]:
    """The names of enabled, unexpired peers on enabled interfaces of enabled tenants
    whose lease runs, narrowed by `where`."""
    rows = db.execute(
        select(
            ExposedPort.id,
            ExposedPort.hostname,
            Peer.ipv4,
            ExposedPort.local_port,
            ExposedPort.tls,
            Interface.node_id,
            Node.public_host,
        )
        .join(Peer, ExposedPort.peer_id == Peer.id)
        .join(Interface, Peer.interface_id == Interface.id)
        .join(Node, Interface.node_id == Node.id)
        .join(Tenant, Interface.tenant_id == Tenant.id)
        .where(
            ExposedPort.hostname.is_not(None),
            ExposedPort.expires_at > now,
            Peer.enabled,
            Interface.enabled,
            Tenant.enabled,
            (Peer.expires_at.is_(None)) | (Peer.expires_at > now),
            *where,
        )
    ).all()
    return [
        LiveName(
            row.id, row.hostname, row.ipv4, row.local_port, row.tls, row.node_id, row.public_host
        )
        for row in rows
        if row.hostname and row.ipv4
    ]


def _nat_networks(ifaces: Iterable[Interface]) -> Iterable[NatNetwork]:
    for iface in ifaces:
        for cidr in (iface.ipv4, iface.ipv6):
            if cidr:
                yield NatNetwork(iface.name, network_of(cidr))


def _scoped(
    policy: PeerPolicy,
    acls: NameMap,
    terms: dict[int, TenantTerms],
    tenant_of: dict[str, int],
) -> PeerPolicy:
    """The peer's profile by its fleet-wide name (its tenant's own profile comes first),
    and what its tenant and plan impose beside its own settings."""
    tenant = tenant_of[policy.interface]
    acl = acls.kernel_name(policy.acl, tenant)
    inherited = inherit(policy, terms.get(tenant))
    return inherited if acl == inherited.acl else replace(inherited, acl=acl)


def with_blocks(own: tuple[str, ...], inherited: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(own) | set(inherited))) if inherited else own


@dataclass(frozen=True)
class TenantTerms:
    """What a tenant and its plan impose on every peer of it: the classes of traffic
    they block, and the whole interface's speed limits."""

    block_apps: tuple[str, ...] = ()
    total_down_kbit: int | None = None
    total_up_kbit: int | None = None


def tenant_terms(db: Session, tenant_id: int | None = None) -> dict[int, TenantTerms]:
    """Each tenant's terms (tenants that impose nothing are left out)."""
    query = select(
        Tenant.id,
        Tenant.block_apps,
        Plan.block_apps,
        Plan.rate_total_down_kbit,
        Plan.rate_total_up_kbit,
    ).outerjoin(Plan, Tenant.plan_id == Plan.id)
    if tenant_id is not None:
        query = query.where(Tenant.id == tenant_id)
    found = {}
    for tenant, own, plan, down, up in db.execute(query).all():
        blocked = tuple(sorted(set(split_csv(own)) | set(split_csv(plan))))
        if blocked or down or up:
            found[tenant] = TenantTerms(blocked, down or None, up or None)
    return found


def inherit(policy: PeerPolicy, terms: TenantTerms | None) -> PeerPolicy:
    """`policy` under its tenant's terms (None: the tenant imposes nothing)."""
    terms = terms or TenantTerms()
    blocked = with_blocks(policy.block_apps, terms.block_apps)
    now = (blocked, terms.total_down_kbit, terms.total_up_kbit)
    if now == (policy.block_apps, policy.total_down_kbit, policy.total_up_kbit):
        return policy
    return replace(
        policy,
        block_apps=blocked,
        total_down_kbit=terms.total_down_kbit,
        total_up_kbit=terms.total_up_kbit,
    )


def peer_policy(interface: str, row: Any, now: datetime, tz: tzinfo) -> PeerPolicy:
    """A peer's policy from a row of _PEER_COLUMNS (or a Peer) at `now`."""
    # By name, the whole row (see _collect_peers: a column added fails loudly here too).
    (
        _iface_id, _key, _psk, ipv4, ipv6, _routed, _enabled, _expires_at,
        peer_id, index, acl, mesh, down, up,
        cap_bytes, reset_day, reset_at, used, used_period, block_apps,
    ) = row  # fmt: skip
    cap = None
    if cap_bytes is not None:
        start = int(cap_period(now, reset_day or 1, tz, reset_at)[0].timestamp())
        cap = Cap(int(cap_bytes), start, int(used or 0) if used_period == start else 0)
    return PeerPolicy(
        interface, peer_id, index, ipv4, ipv6, acl or "full", bool(mesh), down, up, cap,
        block_apps=split_csv(block_apps),
    )  # fmt: skip


def policy_of(
    peer: Peer, interface: str, now: datetime, tz: tzinfo, acl: str | None = None
) -> PeerPolicy:
    """`acl`: the peer's profile by its fleet-wide name (store.scoped.kernel_name)."""
    row = tuple(getattr(peer, c.key) for c in _PEER_COLUMNS)
    policy = peer_policy(interface, row, now, tz)
    return policy if acl is None else replace(policy, acl=acl)

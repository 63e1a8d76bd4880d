"""Reading the desired data-plane state of this node out of the database."""

from __future__ import annotations

import gc
import ipaddress
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain.dnsstate import DnsGuard
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
from wirewarden.store.db import begin_snapshot
from wirewarden.store.tables import AclProfile, Interface, Node, Peer, utcnow
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
    ) -> None:
        self.sessions, self.vault, self.node = sessions, vault, node
        self.uplink, self.clock = uplink, clock
        self.policy = policy or PolicyConfig()
        self.dns_guard = dns_guard
        self._cache: _Cached | None = None

    def revision(self) -> int:
        with self.sessions() as db:
            return db.scalar(select(Node.revision).where(Node.name == self.node)) or 0

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
            return cached.state
        state, valid_until = self._read(db, revision, now)
        self._cache = _Cached(revision, valid_until, state)
        return state

    def _read(
        self, db: Session, revision: int, now: datetime
    ) -> tuple[DesiredState, datetime | None]:
        # Tens of thousands of new objects, none of them garbage: collections started by
        # their allocation would only walk the heap (a quarter of the read at 10k peers).
        with _collection_paused():
            return self._read_all(db, revision, now)

    def _read_all(
        self, db: Session, revision: int, now: datetime
    ) -> tuple[DesiredState, datetime | None]:
        ifaces = db.scalars(select(Interface).join(Node).where(Node.name == self.node)).all()
        by_id = {i.id: i for i in ifaces if i.enabled}
        peers: dict[int, dict[str, PeerState]] = {i: {} for i in by_id}
        # Through the connection: the ORM's row handling would cost more than the rows.
        query = select(*_PEER_COLUMNS).where(Peer.interface_id.in_(by_id))
        rows = db.connection().execute(query).all()
        names = {i: iface.name for i, iface in by_id.items()}
        policies: list[PeerPolicy] = []
        next_expiry = self._collect_peers(rows, peers, now, names, policies)
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
        policy = self._policy(db, policies, by_id.values())
        guard = self.dns_guard(db) if self.dns_guard and interfaces else None
        state = DesiredState(
            interfaces, managed, nat, self.uplink, revision, policy, dns_guard=guard
        )
        return state, next_expiry

    def _tz(self) -> tzinfo:
        return self.policy.tz or datetime.now().astimezone().tzinfo or UTC

    def _policy(
        self, db: Session, peers: list[PeerPolicy], ifaces: Iterable[Interface]
    ) -> PolicyState:
        rows = db.execute(
            select(AclProfile.name, AclProfile.rules, AclProfile.default_action)
        ).all()
        profiles: tuple[Profile, ...] = tuple(profile_from_row(*row) for row in rows)
        ifaces = list(ifaces)
        gateways = tuple(
            str(ipaddress.ip_interface(a).ip) for i in ifaces for a in (i.ipv4, i.ipv6) if a
        )
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
        )

    def _collect_peers(
        self,
        rows: Iterable[Any],
        out: dict[int, dict[str, PeerState]],
        now: datetime,
        names: dict[int, str],
        policies: list[PeerPolicy],
    ) -> datetime | None:
        next_expiry: datetime | None = None
        tz = self._tz()
        for row in rows:
            # Every column of _PEER_COLUMNS by name, in its order (a plain unpack: a Row's
            # attributes cost ~1.5 µs each, 10,000 rows a pass); one added there fails here
            # loudly rather than shifting the others.
            (
                iface_id, key, psk, ipv4, ipv6, routed, enabled, expires_at,
                _id, _index, _acl, _mesh, _down, _up,
                cap_bytes, reset_day, reset_at, _used, _used_period,
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
                continue
            out[iface_id][key] = PeerState(
                public_key=key,
                allowed_ips=server_allowed_ips(ipv4, ipv6, routed),
                preshared_key=self.vault.decrypt_opt(psk),
            )
            policies.append(peer_policy(names[iface_id], row, now, tz))
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
        self.revision = self.db.scalar(select(Node.revision).where(Node.name == node)) or 0
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


def _nat_networks(ifaces: Iterable[Interface]) -> Iterable[NatNetwork]:
    for iface in ifaces:
        for cidr in (iface.ipv4, iface.ipv6):
            if cidr:
                yield NatNetwork(iface.name, network_of(cidr))


def peer_policy(interface: str, row: Any, now: datetime, tz: tzinfo) -> PeerPolicy:
    """A peer's policy from a row of _PEER_COLUMNS (or a Peer) at `now`."""
    # By name, the whole row (see _collect_peers: a column added fails loudly here too).
    (
        _iface_id, _key, _psk, ipv4, ipv6, _routed, _enabled, _expires_at,
        peer_id, index, acl, mesh, down, up,
        cap_bytes, reset_day, reset_at, used, used_period,
    ) = row  # fmt: skip
    cap = None
    if cap_bytes is not None:
        start = int(cap_period(now, reset_day or 1, tz, reset_at)[0].timestamp())
        cap = Cap(int(cap_bytes), start, int(used or 0) if used_period == start else 0)
    return PeerPolicy(
        interface, peer_id, index, ipv4, ipv6, acl or "full", bool(mesh), down, up, cap
    )


def policy_of(peer: Peer, interface: str, now: datetime, tz: tzinfo) -> PeerPolicy:
    row = tuple(getattr(peer, c.key) for c in _PEER_COLUMNS)
    return peer_policy(interface, row, now, tz)

"""Reading the desired data-plane state of this node out of the database."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain.state import DesiredState, InterfaceState, NatNetwork, PeerState
from wirewarden.store.tables import Interface, Node, Peer, utcnow
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
)


def split_csv(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def server_allowed_ips(ipv4: str, ipv6: str | None, routed: str | None) -> tuple[str, ...]:
    own = (f"{ipv4}/32",) + ((f"{ipv6}/128",) if ipv6 else ())
    return own + split_csv(routed)


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
    ) -> None:
        self.sessions, self.vault, self.node = sessions, vault, node
        self.uplink, self.clock = uplink, clock
        self._cache: _Cached | None = None

    def revision(self) -> int:
        with self.sessions() as db:
            return db.scalar(select(Node.revision).where(Node.name == self.node)) or 0

    def __call__(self) -> DesiredState:
        now = self.clock()
        with self.sessions() as db:
            revision = db.scalar(select(Node.revision).where(Node.name == self.node)) or 0
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
        ifaces = db.scalars(select(Interface).join(Node).where(Node.name == self.node)).all()
        by_id = {i.id: i for i in ifaces if i.enabled}
        peers: dict[int, dict[str, PeerState]] = {i: {} for i in by_id}
        rows = db.execute(select(*_PEER_COLUMNS).where(Peer.interface_id.in_(by_id))).all()
        next_expiry = self._collect_peers(rows, peers, now)
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
        return DesiredState(interfaces, managed, nat, self.uplink, revision), next_expiry

    def _collect_peers(
        self,
        rows: Iterable[Any],
        out: dict[int, dict[str, PeerState]],
        now: datetime,
    ) -> datetime | None:
        next_expiry: datetime | None = None
        for iface_id, key, psk, ipv4, ipv6, routed, enabled, expires_at in rows:
            if expires_at is not None and expires_at > now:
                next_expiry = expires_at if next_expiry is None else min(next_expiry, expires_at)
            if not enabled or (expires_at is not None and expires_at <= now):
                continue
            out[iface_id][key] = PeerState(
                public_key=key,
                allowed_ips=server_allowed_ips(ipv4, ipv6, routed),
                preshared_key=self.vault.decrypt_opt(psk),
            )
        return next_expiry


def _nat_networks(ifaces: Iterable[Interface]) -> Iterable[NatNetwork]:
    for iface in ifaces:
        for cidr in (iface.ipv4, iface.ipv6):
            if cidr:
                yield NatNetwork(iface.name, network_of(cidr))

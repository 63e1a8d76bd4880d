"""Expose: a peer's published ports (mappings), leased and renewed by its client.

The tunnel API calls `register`, `renew`, `remove` and `mine` with the address pair the
connection came in on (the gateway it reached, the tunnel source address it came from):
WireGuard's cryptokey routing ties that source to one peer, so the peer is found here
from the pair and never from anything the client sends. Admins list and remove mappings
through `list` and `delete`. A heartbeat writes no revision (the kernel holds the same
forwards); registration, removal and expiry do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wirewarden.domain import vhost
from wirewarden.domain.addresses import host_of
from wirewarden.domain.exposure import (
    ExposeError,
    Forward,
    host_port_taken,
    lease_until,
    parse_ports,
)
from wirewarden.domain.vhost import NameZone, Route
from wirewarden.services import access, limits
from wirewarden.services.applier import FIREWALL, ApplyFailed, Change
from wirewarden.services.context import (
    Actor,
    Deps,
    audit,
    bump_revision,
    node_id,
    node_name_of,
)
from wirewarden.services.errors import Conflict, Forbidden, Invalid, NotFound
from wirewarden.services.schemas import MappingIn, MappingOut, NameIn
from wirewarden.store.desired import live_names, split_csv
from wirewarden.store.fleet import revision_of
from wirewarden.store.tables import ExposedPort, Interface, Node, Peer, Tenant


@dataclass(frozen=True)
class Origin:
    """Where a request to the tunnel API came from: the gateway address it reached, the
    tunnel source address it came from, on which node. `node` is this node (the socket
    was ours) or the node whose agent relayed it, as its credential says: never what the
    request itself claims, so an agent acts only for the peers of its own node."""

    gateway: str
    source: str
    node: str


HostPorts = Callable[[str], frozenset[int]]
# Traffic this node counted: bytes by forward target (proto, address, port), by name id.
Counted = tuple[dict[tuple[str, str, int], int], Mapping[int, int] | None]


class MappingService:
    def __init__(self, deps: Deps, host_ports: HostPorts, names: NameZone | None = None) -> None:
        self.deps = deps
        # Ports some socket of the host listens on, per protocol: never taken over.
        self.host_ports = host_ports
        # Where HTTP services by name are published (None: they are not).
        self.names = names
        # Told when names may have come or gone (the front listener reads them again);
        # called from the thread that made the change.
        self.names_changed: Callable[[], None] = lambda: None
        # What the front listener passed per name (mapping id), both ways; None where no
        # front runs in this process (the CLI): unknown, not zero.
        self.name_traffic: Callable[[], Mapping[int, int]] | None = None

    def gateways(self) -> frozenset[str]:
        """The gateway addresses of this node's enabled interfaces: where the tunnel API
        listens."""
        with self.deps.sessions() as db:
            rows = db.execute(
                select(Interface.ipv4, Interface.ipv6).where(
                    Interface.node_id == node_id(db, self.deps.node), Interface.enabled
                )
            ).all()
        return frozenset(host_of(a) for row in rows for a in row if a)

    # ---- the tunnel API (acts for the peer the origin belongs to)

    def whoami(self, origin: Origin) -> dict[str, object]:
        with self.deps.sessions() as db:
            peer, iface = self._peer_at(db, origin)
            return {
                "peer": peer.name,
                "interface": iface.name,
                "address": peer.ipv4,
                "expose_ports": peer.expose_ports,
            }

    def register(self, origin: Origin, data: MappingIn) -> MappingOut:
        now = datetime.now(UTC)
        with self.deps.sessions() as db:
            peer, iface = self._peer_at(db, origin)
            if data.remote_port not in parse_ports(peer.expose_ports):
                allowed = peer.expose_ports or "none"
                raise Forbidden(
                    f"port {data.remote_port} is not one this peer may publish "
                    f"(expose_ports: {allowed})",
                    "remote_port",
                )
            # Another node's agent looks at its own host's sockets before it relays.
            here = origin.node == self.deps.node
            if here and data.remote_port in self.host_ports(data.proto):
                raise Conflict(host_port_taken(data.proto, data.remote_port), "remote_port")
            node = iface.node_id
            before = self._forwards_of(db, peer)
            row = ExposedPort(
                node_id=node,
                peer_id=peer.id,
                proto=data.proto,
                remote_port=data.remote_port,
                local_port=data.local_port,
                expires_at=lease_until(now),
            )
            # A name on the front's port is no port mapping (the unique index is for
            # port rows only): registering the port again never takes a name away.
            same = (
                (ExposedPort.node_id == node)
                & (ExposedPort.proto == data.proto)
                & (ExposedPort.remote_port == data.remote_port)
                & ExposedPort.hostname.is_(None)
            )
            taken = Conflict(
                f"{data.proto} port {data.remote_port} is published by another peer",
                "remote_port",
            )
            self._claim(db, row, same, now, iface.tenant_id, taken)
            after = self._forwards_of(db, peer)
            revision = bump_revision(db, node)
            audit(
                db,
                Actor(peer.name, origin.source, via="tunnel"),
                "mapping.register",
                f"{data.proto}/{data.remote_port}",
                iface.tenant_id,
                peer_id=peer.id,
                local_port=data.local_port,
            )
            out = self._out(row, peer, iface, origin.node)
            db.commit()
        self._converge(origin.node, iface.name, before, after, revision)
        return out

    def register_name(self, origin: Origin, data: NameIn) -> MappingOut:
        """An HTTP service by name: the front listener routes its host to the peer."""
        zone = self.names
        if zone is None:
            raise Conflict(
                "this server publishes no names (WIREWARDEN_EXPOSE_DOMAIN is not set, "
                "or WIREWARDEN_EXPOSE_HTTP is off)",
                "name",
            )
        now = datetime.now(UTC)
        with self.deps.sessions() as db:
            peer, iface = self._peer_at(db, origin)
            tenant = db.scalar(select(Tenant.name).where(Tenant.id == iface.tenant_id))
            try:
                host = vhost.hostname(data.name, tenant or "", zone.domain)
            except ExposeError as exc:
                raise Invalid(str(exc), exc.field) from exc
            here = origin.node == self.deps.node
            if not here and not db.scalar(select(Node.public_host).where(Node.id == iface.node_id)):
                # This front passes the name's visitors to the node's front, at the public
                # host the operator gave the node (a tenant's endpoint could name any host).
                raise Conflict(
                    f"node {origin.node} has no public host to pass a name's visitors to "
                    f"(wirewarden node set {origin.node} --public-host HOST)",
                    "name",
                )
            port = zone.port(data.tls)
            if port not in parse_ports(peer.expose_ports):
                raise Forbidden(
                    f"a name is served on port {port}, which is not one this peer may "
                    f"publish (expose_ports: {peer.expose_ports or 'none'})",
                    "name",
                )
            row = ExposedPort(
                node_id=iface.node_id,
                peer_id=peer.id,
                proto="tcp",
                remote_port=port,
                local_port=data.local_port,
                hostname=host,
                tls=data.tls,
                expires_at=lease_until(now),
            )
            taken = Conflict(f"{host} is published by another peer", "name")
            self._claim(db, row, ExposedPort.hostname == host, now, iface.tenant_id, taken)
            who = Actor(peer.name, origin.source, via="tunnel")
            audit(db, who, "mapping.register", host, iface.tenant_id, peer_id=peer.id)
            out = self._out(row, peer, iface, origin.node)
            # Another node's front serves it from that node's state; this node's front
            # reads the names itself (a name is no kernel state: no pass for it).
            revision = None if here else bump_revision(db, iface.node_id)
            db.commit()
        self._changed(origin.node, revision, applied=True)
        return out

    @staticmethod
    def _claim(
        db: Session,
        row: ExposedPort,
        same: ColumnElement[bool],
        now: datetime,
        tenant_id: int,
        taken: Conflict,
    ) -> None:
        """Add `row` (a port or a name), within its tenant's plan. The same client
        registering again (a restart within the lease) takes its own earlier row (`same`)
        back, as it does an expired one of anyone's; another peer's live one is `taken`,
        settled by the unique constraint."""
        owner = or_(ExposedPort.peer_id == row.peer_id, ExposedPort.expires_at <= now)
        db.execute(delete(ExposedPort).where(same, owner))
        limits.reserve_mapping(db, tenant_id, row.remote_port)
        db.add(row)
        try:
            db.flush()
        except IntegrityError as exc:
            raise taken from exc

    def routes(self) -> dict[str, Route]:
        """The live names for the front listener: this node's peers' by their tunnel
        address; another node's by that node's public host (the operator's, never an
        endpoint a tenant admin may set) and front port, where its agent's front passes
        them on to the peer."""
        zone = self.names
        with self.deps.sessions() as db:
            here = node_id(db, self.deps.node)
            rows = live_names(db, datetime.now(UTC))
        table: dict[str, Route] = {}
        for n in rows:
            if n.node_id == here:
                table[n.host] = n.route
            elif zone is not None and n.public_host:
                table[n.host] = Route(n.id, n.public_host, zone.port(n.tls), n.tls)
        return table

    def renew(self, origin: Origin) -> tuple[int, datetime]:
        """The heartbeat: every mapping of the peer lives another lease."""
        until = lease_until(datetime.now(UTC))
        with self.deps.sessions() as db:
            peer, _ = self._peer_at(db, origin)
            result = db.execute(
                update(ExposedPort)
                .where(ExposedPort.peer_id == peer.id, ExposedPort.expires_at > func.now())
                .values(expires_at=until)
                .execution_options(synchronize_session=False)
            )
            db.commit()
        return int(getattr(result, "rowcount", 0) or 0), until

    def mine(self, origin: Origin) -> list[MappingOut]:
        with self.deps.sessions() as db:
            peer, iface = self._peer_at(db, origin)
            rows = db.scalars(select(ExposedPort).where(ExposedPort.peer_id == peer.id))
            return [self._out(r, peer, iface, origin.node) for r in rows.all()]

    def unregister(self, origin: Origin, mapping_id: int | None = None) -> int:
        """Removes one of the peer's mappings, or all of them (the client stopping)."""
        with self.deps.sessions() as db:
            peer, iface = self._peer_at(db, origin)
            before = self._forwards_of(db, peer)
            query = delete(ExposedPort).where(ExposedPort.peer_id == peer.id)
            if mapping_id is not None:
                query = query.where(ExposedPort.id == mapping_id)
            gone = int(getattr(db.execute(query), "rowcount", 0) or 0)
            if mapping_id is not None and not gone:
                raise NotFound(f"mapping {mapping_id} not found")
            revision, after = None, self._forwards_of(db, peer)
            if gone:
                revision = bump_revision(db, iface.node_id)
                who = Actor(peer.name, origin.source, via="tunnel")
                target = str(mapping_id or "all")
                audit(db, who, "mapping.remove", target, iface.tenant_id, peer_id=peer.id)
            db.commit()
        if gone:
            self._converge(origin.node, iface.name, before, after, revision)
        return gone

    def revision(self, node: str) -> int:
        """The node's revision now: what its kernel holds once a pass of it (or a later
        one) ran (an agent answers its peer when it got there)."""
        with self.deps.sessions() as db:
            return revision_of(db, node)

    def _peer_at(self, db: Session, origin: Origin) -> tuple[Peer, Interface]:
        gateway, source = host_of(origin.gateway), host_of(origin.source)
        rows = db.execute(
            select(Peer, Interface)
            .join(Interface, Peer.interface_id == Interface.id)
            .where(
                or_(Peer.ipv4 == source, Peer.ipv6 == source),
                Peer.enabled,
                Interface.enabled,
                Interface.node_id == node_id(db, origin.node),
            )
        ).all()
        now = datetime.now(UTC)
        for peer, iface in rows:
            gateways = {host_of(a) for a in (iface.ipv4, iface.ipv6) if a}
            if gateway in gateways and not (peer.expires_at and peer.expires_at <= now):
                return peer, iface
        # Not a peer of the interface whose gateway it reached: nothing to say to it.
        raise Forbidden("this address is not a peer of this gateway")

    # ---- admins

    def live(self, actor: Actor, peer_id: int | None = None) -> list[MappingOut]:
        """The live mappings `actor` may see (of one peer when given)."""
        with self.deps.sessions() as db:
            query = (
                select(ExposedPort, Peer, Interface)
                .join(Peer, ExposedPort.peer_id == Peer.id)
                .join(Interface, Peer.interface_id == Interface.id)
                .where(ExposedPort.expires_at > datetime.now(UTC))
                .order_by(ExposedPort.id)
            )
            if peer_id is not None:
                query = query.where(ExposedPort.peer_id == peer_id)
            query = query.where(access.interface_filter(actor), access.own_peers(actor))
            rows = db.execute(query).all()
            here = node_id(db, self.deps.node)
            names: dict[int, str] = {i: n for i, n in db.execute(select(Node.id, Node.name))}
        # This node's kernel counts its forwards; this front passes every name's bytes.
        ours = [m.node_id == here or bool(m.hostname) for m, _, _ in rows]
        counted = self._counted() if any(ours) else None
        return [
            self._out(m, p, i, names[m.node_id], counted if mine else None)
            for (m, p, i), mine in zip(rows, ours, strict=True)
        ]

    def _counted(self) -> Counted | None:
        """This node's traffic counters: the kernel's of forwarded ports by target, the
        front listener's of names by id; None when the kernel's cannot be read."""
        try:
            exposed = self.deps.applier.kernel_counts().exposed
        except ApplyFailed:
            return None
        by_target: dict[tuple[str, str, int], int] = {}
        for c in exposed:
            key = (c.proto, c.address, c.port)
            by_target[key] = by_target.get(key, 0) + c.bytes
        return by_target, self.name_traffic() if self.name_traffic is not None else None

    def of_peer(self, peer_id: int, actor: Actor) -> list[MappingOut]:
        return self.live(actor, peer_id)

    def delete(self, mapping_id: int, actor: Actor) -> MappingOut:
        """Take a mapping away; what it was."""
        with self.deps.sessions() as db:
            found = db.execute(
                select(ExposedPort, Peer, Interface)
                .join(Peer, ExposedPort.peer_id == Peer.id)
                .join(Interface, Peer.interface_id == Interface.id)
                .where(ExposedPort.id == mapping_id)
            ).first()
            if found is None:
                raise NotFound(f"mapping {mapping_id} not found")
            row, peer, iface = found
            try:
                access.check_peer(actor, peer, iface)
            except NotFound as exc:
                raise NotFound(f"mapping {mapping_id} not found") from exc
            node = node_name_of(db, row.node_id)
            gone = self._out(row, peer, iface, node)
            before = self._forwards_of(db, peer)
            db.delete(row)
            db.flush()
            after = self._forwards_of(db, peer)
            revision = bump_revision(db, row.node_id)
            target = row.hostname or f"{row.proto}/{row.remote_port}"
            audit(db, actor, "mapping.delete", target, iface.tenant_id, peer_id=peer.id)
            db.commit()
        self._converge(node, iface.name, before, after, revision)
        return gone

    def reap(self) -> int:
        """Drops mappings whose lease ran out (their client stopped heartbeating), on
        every node: each node whose mappings went moves on a revision (its agent, or this
        node's loop, takes the forwards out)."""
        now = datetime.now(UTC)
        with self.deps.sessions() as db:
            expired = ExposedPort.expires_at <= now
            nodes = db.scalars(select(ExposedPort.node_id).where(expired).distinct()).all()
            if not nodes:
                return 0
            gone = int(getattr(db.execute(delete(ExposedPort).where(expired)), "rowcount", 0) or 0)
            revisions = {node_name_of(db, n): bump_revision(db, n) for n in nodes}
            db.commit()
        for node, revision in revisions.items():
            self._changed(node, revision)
        return gone

    @staticmethod
    def _forwards_of(db: Session, peer: Peer) -> tuple[Forward, ...]:
        """The peer's live published ports as the kernel forwards them."""
        if not peer.ipv4:
            return ()
        # Plain rows, not ORM objects: a registration reads all of the peer's mappings.
        rows = db.execute(
            select(ExposedPort.proto, ExposedPort.remote_port, ExposedPort.local_port).where(
                ExposedPort.peer_id == peer.id,
                ExposedPort.hostname.is_(None),
                ExposedPort.expires_at > datetime.now(UTC),
            )
        ).all()
        return Forward.all_of(peer.ipv4, split_csv(peer.allowed_ips), rows)

    def _converge(
        self,
        node: str,
        interface: str,
        before: tuple[Forward, ...],
        after: tuple[Forward, ...],
        revision: int | None,
    ) -> None:
        """The peer's forwards into this node's kernel now, as a peer's change is (a
        mapping works when its registration is answered); the next pass converges whatever
        this missed. Another node's agent takes them in with its revision."""
        applied = set(before) == set(after)
        if node == self.deps.node and not applied:
            with contextlib.suppress(ApplyFailed):
                self.deps.applier.set_forwards(interface, before, after)
                applied = True
        self._changed(node, revision, applied)

    def _changed(self, node: str, revision: int | None, applied: bool = False) -> None:
        """Forwards are firewall elements: unless the kernel holds them already
        (`applied`), the node converges in its next pass, now (an agent's node when its
        session wakes at the commit); the names are read again. (A pass per registration
        would render every forward again: a peer may publish a thousand.)"""
        if node == self.deps.node:
            sections = frozenset({FIREWALL})
            self.deps.applier.changed(Change(node, revision, sections=sections, applied=applied))
        self.names_changed()

    def _out(
        self,
        row: ExposedPort,
        peer: Peer,
        iface: Interface,
        node: str,
        counted: Counted | None = None,
    ) -> MappingOut:
        url, size = None, None
        if row.hostname and self.names is not None:
            url = self.names.url(row.hostname, row.tls)
        if counted is not None:
            by_target, by_name = counted
            target = (row.proto, host_of(peer.ipv4) if peer.ipv4 else "", row.local_port)
            if not row.hostname:
                size = by_target.get(target, 0)
            elif by_name is not None:
                size = by_name.get(row.id, 0)
        elif not row.hostname:
            size = row.forwarded_bytes  # another node's: as its agent reported it
        return MappingOut(
            id=row.id,
            peer_id=peer.id,
            peer=peer.name,
            interface=iface.name,
            node=node,
            proto="udp" if row.proto == "udp" else "tcp",
            remote_port=row.remote_port,
            local_port=row.local_port,
            expires_at=row.expires_at,
            created_at=row.created_at,
            hostname=row.hostname,
            tls=row.tls,
            url=url,
            bytes=size,
        )

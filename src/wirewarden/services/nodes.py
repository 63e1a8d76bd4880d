"""Nodes of the fleet: adding one (with its one-time join token), its place, capacity and
drain, the agent's enrolment and credential, and what its agent reports about it.

Join tokens (`wwj_`) and node credentials (`wwn_`) carry 256 random bits and are stored as
their SHA-256 (as API tokens are). Only admins see or change nodes.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wirewarden.services import access
from wirewarden.services.context import SYSTEM, Actor, Deps, audit
from wirewarden.services.errors import Conflict, NotFound, Unauthorized
from wirewarden.services.node_schemas import (
    JoinToken,
    NodeCreate,
    NodeCreated,
    NodeOut,
    NodeUpdate,
)
from wirewarden.services.tokens import hash_token
from wirewarden.store.db import engine_of
from wirewarden.store.fleet import is_postgresql, notify_node
from wirewarden.store.tables import (
    Interface,
    Node,
    NodeCredential,
    NodeJoinToken,
    NodeStatus,
    Peer,
)

JOIN_PREFIX, CREDENTIAL_PREFIX = "wwj_", "wwn_"
PENDING, ONLINE, OFFLINE, DRAINING = "pending", "online", "offline", "draining"
# A node whose agent has not been heard for this long is offline (heartbeats every 10 s).
OFFLINE_AFTER = timedelta(seconds=30)
# One answer for every refused enrolment: no oracle of which tokens exist or were used.
BAD_JOIN = "invalid, used or expired join token"
FLEET_NEEDS_POSTGRES = (
    "a fleet (a second node) needs PostgreSQL: move this install with "
    "`wirewarden db copy --to postgresql+psycopg://USER@HOST/DB`, then set "
    "WIREWARDEN_DATABASE_URL to it"
)


@dataclass(frozen=True)
class NodeIdentity:
    """Who a node credential names."""

    id: int
    name: str


@dataclass(frozen=True)
class Heartbeat:
    peers: int
    online_peers: int
    rx_bps: int
    tx_bps: int
    cpu_percent: float
    version: str
    uptime_s: int


@dataclass(frozen=True)
class Ack:
    revision: int
    hash: str
    in_sync: bool
    error: str | None
    # Whether `hash` is the digest of the document the control plane sent for `revision`.
    matches: bool


def _now() -> datetime:
    return datetime.now(UTC)


def status_of(row: NodeStatus | None, drain: bool, now: datetime) -> str:
    """What the dashboard and the API show: offline once heartbeats stopped, draining
    while a live node takes no new peers."""
    if row is None or row.last_seen is None:
        return PENDING
    if row.status == OFFLINE or now - row.last_seen > OFFLINE_AFTER:
        return OFFLINE
    return DRAINING if drain else ONLINE


class NodeService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # ---- admin use cases

    def fleet_possible(self) -> bool:
        return is_postgresql(engine_of(self.deps.sessions))

    def list(self, actor: Actor) -> builtins.list[NodeOut]:
        access.require_admin(actor)
        with self.deps.sessions() as db:
            nodes = db.scalars(select(Node).order_by(Node.name)).all()
            return self._outs(db, nodes)

    def get(self, name: str, actor: Actor) -> NodeOut:
        access.require_admin(actor)
        with self.deps.sessions() as db:
            return self._outs(db, [self._find(db, name)])[0]

    def add(self, data: NodeCreate, actor: Actor) -> NodeCreated:
        access.require_admin(actor)
        token = JOIN_PREFIX + secrets.token_urlsafe(32)
        expires = _now() + timedelta(hours=data.join_token_hours)
        try:
            with self.deps.sessions.begin() as db:
                if not self.fleet_possible() and db.scalar(select(func.count(Node.id))):
                    raise Conflict(FLEET_NEEDS_POSTGRES, "name")
                node = Node(name=data.name, revision=0, drain=False)
                _place(node, data.model_dump(exclude_unset=True, exclude={"name"}))
                db.add(node)
                db.flush()
                db.add(NodeStatus(node_id=node.id, status=PENDING, quotas={}))
                db.add(
                    NodeJoinToken(node_id=node.id, token_hash=hash_token(token), expires_at=expires)
                )
                audit(db, actor, "node.create", data.name, region=node.region)
        except IntegrityError as exc:
            raise Conflict(f"a node named {data.name!r} exists", "name") from exc
        out = self.get(data.name, actor)
        return NodeCreated(**out.model_dump(), join_token=token, join_token_expires_at=expires)

    def update(self, name: str, data: NodeUpdate, actor: Actor) -> NodeOut:
        access.require_admin(actor)
        given = data.model_dump(exclude_unset=True)
        with self.deps.sessions.begin() as db:
            node = self._find(db, name)
            _place(node, {k: v for k, v in given.items() if k != "drain"})
            if given.get("drain") is not None:
                node.drain = bool(given["drain"])
            audit(db, actor, "node.update", name, None, **{k: str(v) for k, v in given.items()})
        return self.get(name, actor)

    def join_token(self, name: str, actor: Actor, hours: int = 24) -> JoinToken:
        """A new one-time token for the node (a reinstalled server enrols again with it)."""
        access.require_admin(actor)
        token = JOIN_PREFIX + secrets.token_urlsafe(32)
        expires = _now() + timedelta(hours=hours)
        with self.deps.sessions.begin() as db:
            node = self._find(db, name)
            if node.name == self.deps.node:
                raise Conflict("the control plane's own node has no agent", "name")
            db.add(NodeJoinToken(node_id=node.id, token_hash=hash_token(token), expires_at=expires))
            audit(db, actor, "node.join_token", name, expires_at=expires.isoformat())
        return JoinToken(node=name, join_token=token, expires_at=expires)

    def remove(self, name: str, actor: Actor) -> None:
        """Forget the node; its credential stops working at once and its agent's open
        connections are closed. A node still holding interfaces is refused."""
        access.require_admin(actor)
        with self.deps.sessions.begin() as db:
            node = self._find(db, name)
            if node.name == self.deps.node:
                raise Conflict("the control plane's own node cannot be removed", "name")
            held = db.scalars(select(Interface.name).where(Interface.node_id == node.id)).all()
            if held:
                raise Conflict(
                    f"node {name!r} still has interfaces ({', '.join(sorted(held))}): "
                    "delete or move them first",
                    "name",
                )
            db.delete(node)  # its status, tokens and credentials go with it (cascade)
            notify_node(db, name)
            audit(db, actor, "node.delete", name)

    def revoke(self, name: str, actor: Actor) -> None:
        """Revoke the node's credentials (it must enrol again with a new join token)."""
        access.require_admin(actor)
        with self.deps.sessions.begin() as db:
            node = self._find(db, name)
            _revoke_credentials(db, node.id)
            notify_node(db, name)
            audit(db, actor, "node.revoke", name)

    # ---- the agent's side

    def enrol(self, join_token: str, version: str, source: str = "") -> tuple[str, str]:
        """Trade a join token for a node credential: (node name, credential). The token
        is spent in the same transaction; earlier credentials of the node are revoked."""
        credential = CREDENTIAL_PREFIX + secrets.token_urlsafe(32)
        now = _now()
        if not join_token.startswith(JOIN_PREFIX):
            raise Unauthorized(BAD_JOIN)
        with self.deps.sessions.begin() as db:
            row = db.scalar(
                select(NodeJoinToken).where(NodeJoinToken.token_hash == hash_token(join_token))
            )
            if row is None or row.used_at is not None or row.expires_at <= now:
                raise Unauthorized(BAD_JOIN)
            # Spent only if nobody spent it meanwhile (two agents racing with one token).
            spent = db.execute(
                update(NodeJoinToken)
                .where(NodeJoinToken.id == row.id, NodeJoinToken.used_at.is_(None))
                .values(used_at=now)
            )
            if getattr(spent, "rowcount", 0) != 1:
                raise Unauthorized(BAD_JOIN)
            node = db.get(Node, row.node_id)
            assert node is not None  # the token's foreign key cascades
            _revoke_credentials(db, node.id)
            self._status(db, node.id).report_seq = 0  # a new install counts its reports anew
            db.add(
                NodeCredential(
                    node_id=node.id,
                    credential_hash=hash_token(credential),
                    prefix=credential[:10],
                )
            )
            notify_node(db, node.name)  # an agent still on the old credential is closed
            actor = Actor(f"node:{node.name}", source, via="enrol")
            audit(db, actor, "node.enrol", node.name, version=version[:32])
            return node.name, credential

    def authenticate(self, credential: str) -> NodeIdentity | None:
        """The node a credential names; None when unknown or revoked (read on every call
        and every wake, so a revocation counts at once)."""
        if not credential.startswith(CREDENTIAL_PREFIX):
            return None
        with self.deps.sessions() as db:
            row = db.execute(
                select(Node.id, Node.name)
                .join(NodeCredential, NodeCredential.node_id == Node.id)
                .where(
                    NodeCredential.credential_hash == hash_token(credential),
                    NodeCredential.revoked_at.is_(None),
                )
            ).first()
        return None if row is None else NodeIdentity(row.id, row.name)

    def heartbeat(self, node: NodeIdentity, beat: Heartbeat) -> None:
        """The node's status row only: no revision moves, no lock a change takes."""
        now = _now()
        with self.deps.sessions.begin() as db:
            row = self._status(db, node.id)
            back = row.status != ONLINE
            row.status, row.last_seen = ONLINE, now
            row.peers, row.online_peers = beat.peers, beat.online_peers
            row.rx_bps, row.tx_bps = beat.rx_bps, beat.tx_bps
            row.cpu_percent, row.version, row.uptime_s = (
                beat.cpu_percent,
                beat.version,
                beat.uptime_s,
            )
            if back:
                audit(db, SYSTEM, "node.online", node.name, version=beat.version)

    def seen(self, node: NodeIdentity) -> None:
        """Any message counts as a sign of life (a long-poll, an ack)."""
        with self.deps.sessions.begin() as db:
            row = self._status(db, node.id)
            row.last_seen = _now()

    def ack(self, node: NodeIdentity, ack: Ack) -> None:
        with self.deps.sessions.begin() as db:
            row = self._status(db, node.id)
            row.applied_revision = ack.revision
            row.state_hash = ack.hash[:64]
            row.hash_matches = ack.matches
            row.in_sync = ack.in_sync
            row.error = ack.error[:2000] if ack.error else None
            # The node's interfaces as the dashboard shows them: what its agent applied.
            current = db.scalar(select(Node.revision).where(Node.id == node.id)) or 0
            if ack.error:
                state, error = "error", row.error
            elif ack.in_sync and ack.matches and ack.revision >= current:
                state, error = "applied", None
            else:
                state, error = "pending", None
            db.execute(
                update(Interface)
                .where(Interface.node_id == node.id)
                .values(sync_state=state, sync_error=error)
                .execution_options(synchronize_session=False)
            )

    def report_seen(self, node: NodeIdentity, seq: int) -> bool:
        """Whether the report with this sequence number was stored already."""
        with self.deps.sessions() as db:
            last = db.scalar(select(NodeStatus.report_seq).where(NodeStatus.node_id == node.id))
        return last is not None and seq <= last

    def record_quotas(self, node: NodeIdentity, seq: int, quotas: dict[str, Any]) -> bool:
        """Keep a report's quota counters; False when the batch was seen already."""
        with self.deps.sessions.begin() as db:
            row = self._status(db, node.id)
            if seq <= row.report_seq:
                return False
            row.report_seq = seq
            if quotas:
                row.quotas = {**(row.quotas or {}), **quotas}
            return True

    def reported_quotas(self, node: str) -> dict[str, Any]:
        with self.deps.sessions() as db:
            found = db.scalar(
                select(NodeStatus.quotas)
                .join(Node, Node.id == NodeStatus.node_id)
                .where(Node.name == node)
            )
        return dict(found or {})

    def node_of_interface(self, interface: str) -> str | None:
        """The node an interface is on (names are unique in the fleet); None: no such one."""
        with self.deps.sessions() as db:
            return db.scalar(
                select(Node.name)
                .join(Interface, Interface.node_id == Node.id)
                .where(Interface.name == interface)
                .limit(1)
            )

    def quotas_reported(self, prefix: str) -> dict[str, int]:
        """Quota counters other nodes' agents reported, whose names start with `prefix`."""
        with self.deps.sessions() as db:
            rows = db.scalars(
                select(NodeStatus.quotas)
                .join(Node, Node.id == NodeStatus.node_id)
                .where(Node.name != self.deps.node)
            ).all()
        return {
            name: int(used)
            for quotas in rows
            for name, used in (quotas or {}).items()
            if name.startswith(prefix)
        }

    def local_heartbeat(self, beat: Heartbeat, revision: int | None = None) -> None:
        """`serve`'s own node has no agent: serve beats for it (and says what it applied)."""
        with self.deps.sessions() as db:
            found = db.scalar(select(Node.id).where(Node.name == self.deps.node))
        if found is None:
            return
        identity = NodeIdentity(found, self.deps.node)
        self.heartbeat(identity, beat)
        if revision is not None:
            self.ack(identity, Ack(revision, "", True, None, True))

    def mark_offline(self) -> builtins.list[str]:
        """Nodes unheard for OFFLINE_AFTER become offline (with an audit event each);
        returns their names. Run by one replica at a time."""
        cutoff = _now() - OFFLINE_AFTER
        with self.deps.sessions.begin() as db:
            rows = db.execute(
                select(NodeStatus, Node.name)
                .join(Node, Node.id == NodeStatus.node_id)
                .where(NodeStatus.status == ONLINE, NodeStatus.last_seen < cutoff)
                .with_for_update(of=NodeStatus, skip_locked=True)
            ).all()
            for row, name in rows:
                row.status = OFFLINE
                audit(db, SYSTEM, "node.offline", name, last_seen=str(row.last_seen))
            return [name for _, name in rows]

    def gauges(self) -> builtins.list[tuple[str, int, int, bool]]:
        """(node, revision, applied revision, up) for the Prometheus gauges."""
        now = _now()
        with self.deps.sessions() as db:
            rows = db.execute(
                select(Node.name, Node.revision, Node.drain, NodeStatus)
                .outerjoin(NodeStatus, NodeStatus.node_id == Node.id)
                .order_by(Node.name)
            ).all()
        return [
            (
                name,
                revision,
                status.applied_revision if status else 0,
                status_of(status, drain, now) in (ONLINE, DRAINING),
            )
            for name, revision, drain, status in rows
        ]

    def names(self) -> builtins.list[str]:
        with self.deps.sessions() as db:
            return list(db.scalars(select(Node.name)))

    # ---- helpers

    def _find(self, db: Session, name: str) -> Node:
        node = db.scalar(select(Node).where(Node.name == name))
        if node is None:
            raise NotFound(f"node {name!r} not found")
        return node

    def _status(self, db: Session, node_id: int) -> NodeStatus:
        row = db.get(NodeStatus, node_id)
        if row is None:
            row = NodeStatus(node_id=node_id, status=PENDING, quotas={})
            db.add(row)
            db.flush()
        return row

    def _outs(self, db: Session, nodes: Iterable[Node]) -> builtins.list[NodeOut]:
        nodes = list(nodes)
        ids = [n.id for n in nodes]
        counts = dict(
            db.execute(
                select(Interface.node_id, func.count(Peer.id))
                .join(Peer, Peer.interface_id == Interface.id)
                .where(Interface.node_id.in_(ids))
                .group_by(Interface.node_id)
            ).all()
        )
        ifaces: dict[int, list[str]] = {}
        for nid, iname in db.execute(
            select(Interface.node_id, Interface.name).where(Interface.node_id.in_(ids))
        ):
            ifaces.setdefault(nid, []).append(iname)
        statuses = {
            s.node_id: s for s in db.scalars(select(NodeStatus).where(NodeStatus.node_id.in_(ids)))
        }
        now = _now()
        return [
            _out(
                n,
                statuses.get(n.id),
                counts.get(n.id, 0),
                sorted(ifaces.get(n.id, [])),
                n.name == self.deps.node,
                now,
            )
            for n in nodes
        ]


def _place(node: Node, given: dict[str, Any]) -> None:
    for field in ("region", "capacity", "country", "city", "lat", "lon", "public_host"):
        if field not in given:
            continue
        value = given[field]
        if field in ("region",) and value is None:
            value = ""
        if field == "capacity" and value is None:
            continue
        setattr(node, field, value)


def _revoke_credentials(db: Session, node_id: int) -> None:
    db.execute(
        update(NodeCredential)
        .where(NodeCredential.node_id == node_id, NodeCredential.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


def _out(
    node: Node, status: NodeStatus | None, peers: int, ifaces: list[str], local: bool, now: datetime
) -> NodeOut:
    return NodeOut(
        name=node.name,
        region=node.region or "",
        capacity=node.capacity,
        country=node.country,
        city=node.city,
        lat=node.lat,
        lon=node.lon,
        public_host=node.public_host,
        drain=node.drain,
        local=local,
        status=status_of(status, node.drain, now),
        last_seen=status.last_seen if status else None,
        peers=peers,
        load=round(peers / max(node.capacity, 1), 4),
        online_peers=status.online_peers if status else 0,
        revision=node.revision,
        applied_revision=status.applied_revision if status else 0,
        in_sync=bool(status and status.in_sync),
        hash_matches=bool(status and status.hash_matches),
        error=status.error if status else None,
        rx_bps=status.rx_bps if status else 0,
        tx_bps=status.tx_bps if status else 0,
        cpu_percent=status.cpu_percent if status else 0.0,
        version=status.version if status else "",
        interfaces=ifaces,
    )

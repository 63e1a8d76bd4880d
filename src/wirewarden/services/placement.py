"""Placing a tenant's new peer on the least-loaded healthy node (DESIGN.md §5, Placement).

Candidates are the tenant's interfaces on nodes that heartbeat and do not drain, in the
region if one is asked for; the choice itself is domain/placement.py's. Placements take
turns fleet-wide (store.fleet.PlacementLock) from counting to the new peer's commit, so
simultaneous ones never fill the same room twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wirewarden.domain.placement import Candidate, choose
from wirewarden.services import access
from wirewarden.services.context import Actor, Deps, tenant_id_of
from wirewarden.services.errors import Conflict, NotFound
from wirewarden.services.nodes import DRAINING, ONLINE, status_of
from wirewarden.services.peers import PeerService
from wirewarden.services.schemas import PeerCreate, PeerOut
from wirewarden.store.db import engine_of
from wirewarden.store.fleet import PlacementLock
from wirewarden.store.tables import Interface, Node, NodeStatus, Peer


class PlacedPeerCreate(PeerCreate):
    region: str | None = None


class PlacementService:
    def __init__(self, deps: Deps, peers: PeerService) -> None:
        self.deps, self.peers = deps, peers
        self.lock = PlacementLock(engine_of(deps.sessions))

    def place(self, tenant: str, data: PlacedPeerCreate, actor: Actor) -> PeerOut:
        spec = PeerCreate.model_validate(data.model_dump(exclude={"region"}, exclude_unset=True))
        with self.lock.held():
            with self.deps.sessions() as db:
                tenant_id = tenant_id_of(db, tenant)
                if tenant_id is None or not access.sees_tenant(actor, tenant_id):
                    raise NotFound(f"tenant {tenant!r} not found")
                where = self._candidates(db, tenant_id)
            chosen = choose(where.keys(), data.region)
            if chosen is None:
                region = f" in region {data.region!r}" if data.region else ""
                raise Conflict(
                    f"no online, non-draining node{region} holds an interface of {tenant!r}",
                    "region",
                )
            return self.peers.create(where[chosen], spec, actor)

    def _candidates(self, db: Session, tenant_id: int) -> dict[Candidate, str]:
        """The tenant's interfaces by the node each is on, as placement sees that node."""
        rows = db.execute(
            select(Interface.name, Interface.node_id, Node, NodeStatus)
            .join(Node, Node.id == Interface.node_id)
            .outerjoin(NodeStatus, NodeStatus.node_id == Node.id)
            .where(Interface.tenant_id == tenant_id, Interface.enabled)
            .order_by(Interface.name)
        ).all()
        ids = {node_id for _, node_id, _, _ in rows}
        counts = dict(
            db.execute(
                select(Interface.node_id, func.count(Peer.id))
                .join(Peer, Peer.interface_id == Interface.id)
                .where(Interface.node_id.in_(ids))
                .group_by(Interface.node_id)
            ).all()
        )
        now = datetime.now(UTC)
        found: dict[Candidate, str] = {}
        for iface, node_id, node, status in rows:
            shown = status_of(status, node.drain, now)
            candidate = Candidate(
                node=node.name,
                region=node.region or "",
                peers=counts.get(node_id, 0),
                capacity=node.capacity,
                online=shown in (ONLINE, DRAINING),
                drain=node.drain,
            )
            found.setdefault(candidate, iface)  # one interface of the tenant per node
        return found

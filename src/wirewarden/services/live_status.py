"""What the live dashboard reads of the database: which peer each (interface, key) is, and
which peers a viewer may watch. Kept here so the web layer never queries tables itself;
the rule of who may see what stays in access.py."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from wirewarden.services import access
from wirewarden.services.context import Actor, Deps, node_id
from wirewarden.store.tables import Interface, Node, Peer


@dataclass(frozen=True)
class PeerKeys:
    """Peer ids by interface name and public key, as of the node's `revision`."""

    revision: int
    by_key: dict[str, dict[str, int]]


def peer_keys(deps: Deps, known: int) -> PeerKeys | None:
    """This node's peers by interface and key; None while its revision is still `known`
    (the dashboard asks every tick, and the revision is one indexed read)."""
    with deps.sessions() as db:
        revision = db.scalar(select(Node.revision).where(Node.name == deps.node))
        if revision == known:
            return None
        nid = node_id(db, deps.node)
        by_key: dict[str, dict[str, int]] = {}
        # Every interface, those without peers too: the overview shows them with zeros.
        for name in db.scalars(select(Interface.name).where(Interface.node_id == nid)):
            by_key[name] = {}
        rows = db.execute(
            select(Interface.name, Peer.public_key, Peer.id)
            .join(Peer, Peer.interface_id == Interface.id)
            .where(Interface.node_id == nid)
        )
        for name, key, peer_id in rows:
            by_key[name][key] = peer_id
    return PeerKeys(revision or 0, by_key)


def visible_peer_ids(deps: Deps, actor: Actor) -> set[int] | None:
    """The peers an actor may watch live: None means every peer (administrators)."""
    if actor.is_admin:
        return None
    query = (
        select(Peer.id)
        .join(Interface, Peer.interface_id == Interface.id)
        .where(access.interface_filter(actor), access.own_peers(actor))
    )
    with deps.sessions() as db:
        return set(db.scalars(query))

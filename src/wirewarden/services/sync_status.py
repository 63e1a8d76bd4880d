"""Recording what each reconcile pass achieved, per interface and its peers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain.state import DesiredState
from wirewarden.store.db import retry_on_busy
from wirewarden.store.tables import Interface, Node, Peer

if TYPE_CHECKING:
    # The reconciler's modules load with the node runtime, not with every CLI command.
    from wirewarden.reconciler.executor import Report

APPLIED, PENDING, ERROR = "applied", "pending", "error"


class SyncStatusWriter:
    """The reconciler's report sink: marks interfaces and peers applied or in error."""

    def __init__(self, sessions: sessionmaker[Session], node: str) -> None:
        self.sessions, self.node = sessions, node

    @retry_on_busy
    def __call__(self, desired: DesiredState, report: Report) -> None:
        from wirewarden.reconciler.executor import GLOBAL

        # Every interface of the node, the disabled ones too: for them "applied" means the
        # pass left no device behind, which is what the user asked for. Two statements for
        # each distinct outcome (usually one: all applied), not two an interface: a node
        # of 200 tenants would write 400 every pass.
        with self.sessions.begin() as db:
            rows = db.execute(
                select(Interface.id, Interface.name).join(Node).where(Node.name == self.node)
            ).all()
            outcomes: dict[str | None, list[int]] = {}
            for iface_id, name in rows:
                error = report.errors.get(name) or report.errors.get(GLOBAL)
                outcomes.setdefault(error, []).append(iface_id)
            for error, ids in outcomes.items():
                mark_interfaces(db, ids, error)


def mark_interfaces(db: Session, ids: list[int], error: str | None) -> None:
    state = ERROR if error else APPLIED
    changed = (Interface.sync_state != state) | (Interface.sync_error.is_distinct_from(error))
    db.execute(
        update(Interface)
        .where(Interface.id.in_(ids), changed)
        .values(sync_state=state, sync_error=error)
        .execution_options(synchronize_session=False)
    )
    unsettled = Peer.sync_state != state
    db.execute(
        update(Peer)
        .where(Peer.interface_id.in_(ids), unsettled)
        .values(sync_state=state, sync_error=error)
        .execution_options(synchronize_session=False)
    )

"""Reading the audit log: filters by actor, action, target and time, newest first, paged.

Admins read everything; a tenant admin the events of its tenant and its own; a member the
events they caused (the rule is access.audit_filter).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.services import access
from wirewarden.services.account_schemas import AuditOut
from wirewarden.services.context import Actor, page_of
from wirewarden.services.schemas import Page
from wirewarden.store.tables import AuditEvent


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.db = sessions

    def list(
        self,
        actor: Actor,
        who: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[AuditOut]:
        query = select(AuditEvent).where(access.audit_filter(actor))
        if who:
            query = query.where(AuditEvent.actor == who)
        if action:
            # "peer." matches every peer action; a full name matches itself.
            query = query.where(AuditEvent.action.startswith(action, autoescape=True))
        if target:
            query = query.where(AuditEvent.target.contains(target, autoescape=True))
        if since:
            query = query.where(AuditEvent.at >= since)
        if until:
            query = query.where(AuditEvent.at < until)
        with self.db() as db:
            # Ids grow with time: newest first without a second sort key.
            total, rows = page_of(db, query, AuditEvent.id.desc(), limit, offset)
            items = [
                AuditOut(
                    id=e.id,
                    at=e.at,
                    actor=e.actor,
                    action=e.action,
                    target=e.target,
                    source=e.source,
                    detail=e.detail or {},
                )
                for e in rows
            ]
            return Page(items=items, total=total, limit=limit, offset=offset)

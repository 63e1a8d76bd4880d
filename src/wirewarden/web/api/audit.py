"""/api/v1/audit: the audit log, newest first, with filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from wirewarden.services.account_schemas import AuditOut
from wirewarden.services.schemas import Page
from wirewarden.web.deps import Admin, App, Limit, Offset

router = APIRouter(prefix="/audit", tags=["audit"])
Text = Annotated[str | None, Query(max_length=128)]


@router.get("")
def list_audit(
    app: App,
    actor: Admin,
    who: Annotated[str | None, Query(alias="actor", max_length=64, description="User")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="Action or its prefix, e.g. 'peer.'")
    ] = None,
    target: Annotated[str | None, Query(max_length=128, description="Substring")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AuditOut]:
    return app.audit_log.list(actor, who, action, target, since, until, limit, offset)

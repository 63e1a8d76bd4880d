"""/api/v1/peers/{id}/share: make a one-time link to a peer's config (see web/share.py)."""

from __future__ import annotations

from fastapi import APIRouter, status

from wirewarden.services.account_schemas import ShareCreate, ShareOut
from wirewarden.web.deps import App, RowId, Writer

router = APIRouter(prefix="/peers", tags=["peers"])


@router.post("/{peer_id}/share", status_code=status.HTTP_201_CREATED)
def create_share(app: App, actor: Writer, peer_id: RowId, body: ShareCreate) -> ShareOut:
    """A link that shows the peer's config and QR once, then never again (default 24 h)."""
    return app.shares.create(peer_id, actor, body.hours)

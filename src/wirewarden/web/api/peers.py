"""/api/v1/peers/{id}"""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import PlainTextResponse

from wirewarden.services.schemas import PeerOut, PeerUpdate
from wirewarden.web.deps import App, Changes, Reader, RowId, Writer

router = APIRouter(prefix="/peers", tags=["peers"])


@router.get("/{peer_id}")
def get_peer(app: App, actor: Reader, peer_id: RowId) -> PeerOut:
    return app.peers.get(peer_id, actor)


@router.patch("/{peer_id}")
async def update_peer(
    app: App, changes: Changes, actor: Writer, peer_id: RowId, body: PeerUpdate
) -> PeerOut:
    return await changes.run(app.peers.update, peer_id, body, actor)


@router.delete("/{peer_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_peer(app: App, changes: Changes, actor: Writer, peer_id: RowId) -> Response:
    await changes.run(app.peers.delete, peer_id, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{peer_id}/config", response_class=PlainTextResponse)
def peer_config(app: App, actor: Writer, peer_id: RowId) -> PlainTextResponse:
    # A client config holds the peer's private key, hence the write scope.
    text, filename = app.peers.config(peer_id, actor)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return PlainTextResponse(text, headers=headers)


@router.get("/{peer_id}/qr", response_class=Response)
def peer_qr(app: App, actor: Writer, peer_id: RowId) -> Response:
    return Response(app.peers.qr(peer_id, actor), media_type="image/svg+xml")

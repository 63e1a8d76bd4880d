"""/api/v1/mappings: the ports peers publish through the server (expose)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from wirewarden.services.schemas import MappingOut
from wirewarden.web.deps import App, Changes, Reader, RowId, Writer

router = APIRouter(prefix="/mappings", tags=["expose"])


@router.get("")
def list_mappings(app: App, actor: Reader) -> list[MappingOut]:
    return app.mappings.live(actor)


@router.delete("/{mapping_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_mapping(app: App, changes: Changes, actor: Writer, mapping_id: RowId) -> Response:
    await changes.run(app.mappings.delete, mapping_id, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""/api/v1/acl-profiles and a peer's data usage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from wirewarden.services.schemas import AppsOut, ProfileIn, ProfileOut, UsageOut
from wirewarden.web.deps import App, Reader, RowId, Writer

router = APIRouter(tags=["policy"])


@router.get("/acl-profiles")
def list_profiles(app: App, _: Reader) -> list[ProfileOut]:
    return app.profiles.list()


@router.get("/acl-profiles/{name}")
def get_profile(app: App, _: Reader, name: str) -> ProfileOut:
    return app.profiles.get(name)


@router.put("/acl-profiles/{name}")
def put_profile(
    app: App, actor: Writer, name: str, body: ProfileIn, response: Response
) -> ProfileOut:
    out, created = app.profiles.put(name, body, actor)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return out


@router.delete("/acl-profiles/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_profile(app: App, actor: Writer, name: str) -> Response:
    app.profiles.delete(name, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/peers/{peer_id}/usage")
def peer_usage(app: App, actor: Reader, peer_id: RowId) -> UsageOut:
    return app.usage.usage(peer_id, actor)


@router.get("/peers/{peer_id}/apps")
def peer_apps(
    app: App,
    actor: Reader,
    peer_id: RowId,
    since: Annotated[
        datetime | None, Query(description="Start (ISO 8601 or Unix time): from the store")
    ] = None,
) -> AppsOut:
    """The peer's classified traffic by class (bytes and packets, both ways): since
    `since` (ISO 8601) from the metrics store, else as its node's kernel counts it now
    (docs/classify.md)."""
    return app.usage.apps(peer_id, actor, since)


@router.post("/peers/{peer_id}/usage/reset")
def reset_usage(app: App, actor: Writer, peer_id: RowId) -> UsageOut:
    return app.usage.reset(peer_id, actor)

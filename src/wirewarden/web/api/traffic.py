"""Traffic history and top peers: /api/v1/peers/{id}/traffic,
/api/v1/interfaces/{name}/traffic, /api/v1/traffic/top. (A peer's usage this period,
/api/v1/peers/{id}/usage, is in policy.py beside its data cap.)"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from wirewarden.services.traffic import EndpointSeen, TopPeers, TrafficSeries
from wirewarden.web.api.serialized import model_response
from wirewarden.web.deps import App, Reader, RowId

router = APIRouter(tags=["traffic"])
Since = Annotated[
    datetime | None, Query(description="Start (ISO 8601 or Unix time); default: 24 h before until")
]
Until = Annotated[datetime | None, Query(description="End (ISO 8601 or Unix time); default: now")]
Step = Annotated[
    int | None,
    Query(
        ge=1, le=366 * 86400, description="Bucket seconds (whole minutes); default: from the range"
    ),
]


@router.get("/peers/{peer_id}/traffic", response_model=TrafficSeries)
def peer_traffic(
    app: App,
    actor: Reader,
    peer_id: RowId,
    since: Since = None,
    until: Until = None,
    step: Step = None,
) -> Response:
    """Bytes per bucket: `rx_bytes` received from the peer (its upload), `tx_bytes` sent to it."""
    return model_response(app.traffic.peer_series(peer_id, since, until, step, actor))


@router.get("/peers/{peer_id}/endpoints")
def peer_endpoints(
    app: App, actor: Reader, peer_id: RowId, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> list[EndpointSeen]:
    """Where the peer connected from, newest first: each change the collector saw."""
    return app.traffic.endpoints(peer_id, limit, actor)


@router.get("/interfaces/{name}/traffic", response_model=TrafficSeries)
def interface_traffic(
    app: App, actor: Reader, name: str, since: Since = None, until: Until = None, step: Step = None
) -> Response:
    return model_response(app.traffic.interface_series(name, since, until, step, actor))


@router.get("/traffic/top")
def top_peers(
    app: App,
    actor: Reader,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    interface: Annotated[str | None, Query(max_length=15)] = None,
) -> TopPeers:
    """Peers that moved the most bytes (both ways) over the range, among those the caller
    may see (a tenant admin: its tenant's; a member: their own)."""
    return app.traffic.top(since, until, limit, interface, actor)

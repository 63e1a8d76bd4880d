"""Dashboard traffic: chart data for the peer and interface pages, and the top talkers.

The charts' JSON is served here, beside the pages, so the session cookie that shows a page
also fetches its chart (the REST API takes bearer tokens); a member sees only their own
peers. Points are bytes per bucket; the page turns them into rates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from wirewarden.domain.traffic import DAY, HOUR
from wirewarden.services.traffic import Buckets
from wirewarden.web.deps import RowId
from wirewarden.web.ui.auth import Admin, App, Signed
from wirewarden.web.ui.templating import NO_STORE, templates

router = APIRouter(include_in_schema=False)
RANGES = {"1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "1y": 365 * DAY}
RANGE_NAMES = tuple(RANGES)
Range = Annotated[str, Query(pattern="^(1h|24h|7d|30d|1y)$")]


def _since(span: str) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=RANGES[span])


def chart_json(buckets: Buckets) -> JSONResponse:
    body: dict[str, Any] = {
        "step": buckets.step,
        "t": buckets.t,
        "rx": buckets.rx,
        "tx": buckets.tx,
        "rx_bytes": sum(buckets.rx),
        "tx_bytes": sum(buckets.tx),
    }
    return JSONResponse(body, headers=NO_STORE)


@router.get("/ui/traffic/peers/{peer_id}.json")
def peer_chart(app: App, viewer: Signed, peer_id: RowId, range: Range = "24h") -> JSONResponse:
    return chart_json(app.traffic.peer_buckets(peer_id, _since(range), actor=viewer.actor))


@router.get("/ui/traffic/interfaces/{name}.json")
def interface_chart(app: App, viewer: Admin, name: str, range: Range = "24h") -> JSONResponse:
    return chart_json(app.traffic.interface_buckets(name, _since(range), actor=viewer.actor))


@router.get("/ui/traffic/top", response_class=HTMLResponse)
def top_talkers(request: Request, app: App, viewer: Signed, range: Range = "24h") -> Response:
    return templates.TemplateResponse(
        request, "_top_talkers.html", top_context(app, viewer, range), headers=NO_STORE
    )


def top_context(app: Any, viewer: Any, span: str = "24h") -> dict[str, Any]:
    """What the top-talkers table shows: the peers the viewer may see (the service scopes)."""
    top = app.traffic.recent_top(RANGES[span], 10, actor=viewer.actor)
    return {"top": top.items, "top_range": span, "ranges": RANGE_NAMES}

"""Live peer status for open dashboards over one WebSocket each.

One hub task takes a snapshot of every peer's status (one `wg show all dump`, cached) per
tick, diffs it against the last one, and sends each socket only the changed peers it has
on screen, plus totals where it shows the overview. The session cookie is checked at the
handshake (and the Origin, since browsers send cookies on cross-site sockets too), and
again every few ticks so a signed-out or revoked session loses its socket at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.requests import HTTPConnection

from wirewarden.bootstrap import Container
from wirewarden.services.applier import ApplyFailed
from wirewarden.services.live_status import peer_keys
from wirewarden.services.peer_table import is_online
from wirewarden.web.ui.viewer import Viewer

log = logging.getLogger(__name__)
MAX_WATCH = 500  # a page shows at most 200 rows; anything more is not a dashboard
RECHECK_TICKS = 5  # re-validate each socket's session this often
SIGNED_OUT = 4401
BAD_ORIGIN = 4403

# (online, latest handshake, rx, tx, endpoint): what a dashboard shows of one peer.
Status = tuple[bool, int, int, int, str | None]
ViewerOf = Callable[[HTTPConnection], Viewer | None]
OwnIds = Callable[[Container, Viewer], set[int] | None]


@dataclass
class Snapshot:
    status: dict[int, Status]
    changed: set[int]
    interfaces: dict[str, list[int]]  # peer ids per interface name
    # Bytes/s of the peers that moved bytes in the traffic collector's last period.
    rates: dict[int, tuple[float, float]] = field(default_factory=dict)
    rates_changed: bool = False
    all_totals: dict[str, Any] | None = None

    def totals_for(self, ids: Collection[int] | None) -> dict[str, Any]:
        """Totals over `ids` (None: every peer). Every administrator's dashboard shows the
        same all-peer totals: they are summed once per snapshot, not once per socket."""
        if ids is not None:
            return self.totals(ids)
        if self.all_totals is None:
            self.all_totals = self.totals(None)
        return self.all_totals

    def totals(self, ids: Collection[int] | None) -> dict[str, Any]:
        per_iface: dict[str, dict[str, int]] = {}
        rates: dict[str, dict[str, float]] = {}
        for name, members in self.interfaces.items():
            chosen = members if ids is None else [i for i in members if i in ids]
            stats = [self.status[i] for i in chosen if i in self.status]
            per_iface[name] = {
                "peers": len(chosen),
                "online": sum(s[0] for s in stats),
                "rx": sum(s[2] for s in stats),
                "tx": sum(s[3] for s in stats),
            }
            moving = [self.rates[i] for i in chosen if i in self.rates]
            rates[name] = {"rx": sum(r[0] for r in moving), "tx": sum(r[1] for r in moving)}
        rows = per_iface.values()
        return {
            "peers": sum(r["peers"] for r in rows),
            "online": sum(r["online"] for r in rows),
            "rx": sum(r["rx"] for r in rows),
            "tx": sum(r["tx"] for r in rows),
            "interfaces": per_iface,
            "rates": {
                "rx": sum(r["rx"] for r in rates.values()),
                "tx": sum(r["tx"] for r in rates.values()),
                "interfaces": rates,
            },
        }


def status_json(status: Status) -> dict[str, Any]:
    online, handshake, rx, tx, endpoint = status
    return {"online": online, "handshake": handshake, "rx": rx, "tx": tx, "endpoint": endpoint}


class PeerIndex:
    """(interface, public key) -> peer id, reloaded only when the node's revision moves."""

    def __init__(self, app: Container) -> None:
        self.app = app
        self.revision = -1
        self.by_key: dict[str, dict[str, int]] = {}

    def refresh(self) -> None:
        found = peer_keys(self.app.deps, self.revision)
        if found is not None:
            self.by_key, self.revision = found.by_key, found.revision


@dataclass(eq=False)
class Subscriber:
    socket: WebSocket
    viewer: Viewer
    allowed: set[int] | None  # None: every peer (administrators)
    watched: set[int] = field(default_factory=set)
    overview: bool = False
    fresh: bool = True  # the next message carries the whole state of what it watches

    def message(self, snap: Snapshot) -> dict[str, Any] | None:
        ids = self.watched if self.fresh else self.watched & snap.changed
        out: dict[str, Any] = {}
        if ids:
            out["peers"] = {i: status_json(snap.status[i]) for i in ids if i in snap.status}
        if self.overview and (self.fresh or snap.changed or snap.rates_changed):
            out["totals"] = snap.totals_for(self.allowed)
        self.fresh = False
        return out or None


class StatusHub:
    def __init__(self, app: Container, interval: float = 2.0) -> None:
        self.app = app
        self.interval = interval
        self.index = PeerIndex(app)
        self.subscribers: set[Subscriber] = set()
        self.last: dict[int, Status] = {}
        self.last_rates: dict[int, tuple[float, float]] = {}
        self.latest: Snapshot | None = None
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0

    def snapshot(self) -> Snapshot:
        """Every peer's status now and which changed since the last snapshot (blocking)."""
        self.index.refresh()
        try:
            dumps = self.app.deps.stats()
        except ApplyFailed:
            dumps = {}
        now = datetime.now(UTC).timestamp()
        status: dict[int, Status] = {}
        interfaces: dict[str, list[int]] = {}
        for name, keys in self.index.by_key.items():
            dump = dumps.get(name)
            stats = dump.stats if dump else {}
            interfaces[name] = list(keys.values())
            for key, peer_id in keys.items():
                s = stats.get(key)
                if s is None:
                    status[peer_id] = (False, 0, 0, 0, None)
                else:
                    status[peer_id] = (
                        is_online(s, now),
                        s.latest_handshake,
                        s.rx_bytes,
                        s.tx_bytes,
                        s.endpoint,
                    )
        last = self.last
        changed = {i for i, s in status.items() if last.get(i) != s}
        self.last = status
        rates = self.app.collector.snapshot.rates
        rates_changed, self.last_rates = rates is not self.last_rates, rates
        return Snapshot(status, changed, interfaces, rates, rates_changed)

    async def tick(self) -> None:
        snap = await asyncio.to_thread(self.snapshot)
        self.latest = snap
        self.ticks += 1
        for sub in list(self.subscribers):
            await self.push(sub, snap)

    async def push(self, sub: Subscriber, snap: Snapshot) -> None:
        message = sub.message(snap)
        if message is None:
            return
        try:
            await sub.socket.send_text(json.dumps(message, separators=(",", ":")))
        except Exception:  # a socket that went away mid-send: its reader drops it
            self.subscribers.discard(sub)

    async def _run(self) -> None:
        while self.subscribers:
            try:
                await self.tick()
            except Exception:
                log.exception("live status tick failed")
            await asyncio.sleep(self.interval)
        self._task = None

    def join(self, sub: Subscriber) -> None:
        self.subscribers.add(sub)
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def leave(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def close(self) -> None:
        self.subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def same_origin(conn: HTTPConnection) -> bool:
    origin = conn.headers.get("origin")
    host = conn.headers.get("host")
    if not origin or not host:
        return False
    # The public URL counts too: a proxy may pass the socket on with a Host of its own.
    public: str = conn.app.state.container.reach.public_url
    return origin.split("://", 1)[-1] == host or origin.lower() == public


def parse_watch(text: str, allowed: set[int] | None) -> tuple[set[int], bool]:
    try:
        data = json.loads(text)
        ids = {int(i) for i in data.get("watch", [])[:MAX_WATCH]}
        overview = bool(data.get("overview", False))
    except (ValueError, TypeError, AttributeError):
        return set(), False
    return (ids if allowed is None else ids & allowed), overview


def make_router(viewer_of: ViewerOf, own_ids: OwnIds) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.websocket("/ws/status")
    async def status_socket(socket: WebSocket) -> None:
        app: Container = socket.app.state.container
        hub: StatusHub = socket.app.state.status_hub
        viewer = viewer_of(socket) if same_origin(socket) else None
        if viewer is None:
            # Accept then close with a code the page understands (a refused handshake
            # only shows as a generic error in the browser).
            await socket.accept()
            await socket.close(SIGNED_OUT if same_origin(socket) else BAD_ORIGIN)
            return
        await socket.accept()
        allowed = await asyncio.to_thread(own_ids, app, viewer)
        sub = Subscriber(socket, viewer, allowed)
        hub.join(sub)
        try:
            await _serve(socket, hub, sub, viewer_of)
        except WebSocketDisconnect:
            pass
        finally:
            hub.leave(sub)

    return router


async def _serve(socket: WebSocket, hub: StatusHub, sub: Subscriber, viewer_of: ViewerOf) -> None:
    last_check = hub.ticks
    while True:
        try:
            text = await asyncio.wait_for(socket.receive_text(), timeout=hub.interval)
        except TimeoutError:
            text = None
        if text is not None:
            sub.watched, sub.overview = parse_watch(text, sub.allowed)
            sub.fresh = True
            if hub.latest is not None:
                await hub.push(sub, hub.latest)
        if hub.ticks - last_check >= RECHECK_TICKS:
            last_check = hub.ticks
            if await asyncio.to_thread(viewer_of, socket) is None:
                await socket.close(SIGNED_OUT)
                return

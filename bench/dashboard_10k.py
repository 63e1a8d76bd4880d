"""Dashboard figures at 10,000 peers (DESIGN.md §7): the peer list page and live status.

Run from the repository root (no root needed: the data plane is the in-memory fake, whose
`wg show` dump is replaced by one where every peer's counters move on every call):

    .venv/bin/python bench/dashboard_10k.py                 # 10,000 peers, about 1-2 minutes
    .venv/bin/python bench/dashboard_10k.py --peers 1000    # a quick look

1. a fresh data dir, an interface with a /16 and N peers written straight to the database
   (the API's create path is measured by bench/core_10k.py), an admin user;
2. `serve`'s app (create_app) under uvicorn in a child process on 127.0.0.1, signed in
   through the dashboard's own /login form;
3. the interface page (GET /interfaces/<if>), p50/p95/max of the server time (taken inside
   the child around the request) and of the client's wall time, for: random pages sorted by
   name; sorted by last handshake (a sort over live stats of all peers); a search; the htmx
   partial (table only);
4. WebSocket fan-out: 20 dashboards open /ws/status, each watching one page of 100 peers and
   the overview totals; every peer's counters change on every tick; the child's CPU time
   per tick (from /proc) and the bytes each dashboard receives per update, plus the hub's
   snapshot of all N peers timed alone in this process.

It prints figures, never asserts. Only loopback traffic; the child is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from netns_run import cpu_seconds
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.state import DeviceDump, PeerStats

PASSWORD = "pw-" + secrets.token_urlsafe(12)
IFNAME = "wgbench"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):6.1f} ms  p95 {pct(values, 95):6.1f} ms  "
        f"max {max(values):6.1f} ms  (n={len(values)})"
    )


class ChurningDataplane(FakeDataplane):
    """The fake data plane, but every peer has a recent handshake and moving counters."""

    def dump_all(self) -> dict[str, DeviceDump]:
        now = int(time.time())
        out: dict[str, DeviceDump] = {}
        for name, dev in self.devices.items():
            stats = {}
            for i, key in enumerate(dev.peers):
                moved = now * 1000 + i
                stats[key] = PeerStats(f"192.0.2.{i % 250 + 1}:51820", now - i % 400, moved, moved)
            out[name] = DeviceDump(dev.private_key, dev.listen_port, dict(dev.peers), stats)
        return out


def build(data_dir: Path) -> Any:
    from wirewarden.bootstrap import build as build_container
    from wirewarden.config import Settings

    settings = Settings(data_dir=data_dir, public_host="192.0.2.1")
    return build_container(settings, dataplane=ChurningDataplane(), stats_max_age=2.0)


def populate(data_dir: Path, peers: int) -> None:
    from sqlalchemy import insert

    from wirewarden.domain.keys import generate_keypair
    from wirewarden.services.account_schemas import UserCreate
    from wirewarden.services.context import SYSTEM
    from wirewarden.services.schemas import InterfaceCreate
    from wirewarden.store.tables import Interface, Peer

    container = build(data_dir)
    container.interfaces.create(InterfaceCreate(name=IFNAME, address="10.100.0.1/16"), SYSTEM)
    with container.deps.sessions.begin() as db:
        iface_id = db.query(Interface.id).filter(Interface.name == IFNAME).scalar()
        rows = []
        for i in range(1, peers + 1):
            rows.append(
                {
                    "interface_id": iface_id,
                    "name": f"peer-{i:05d}",
                    "host_index": i + 1,
                    "ipv4": f"10.100.{(i + 1) // 256}.{(i + 1) % 256}",
                    "public_key": generate_keypair().public_key,
                    "allowed_ips": "0.0.0.0/0, ::/0",
                    "routed_ips": "",
                    "enabled": True,
                    "sync_state": "applied",
                }
            )
        db.execute(insert(Peer), rows)
    container.users.create(UserCreate(name="operator", role="admin", password=PASSWORD), SYSTEM)
    container.engine.dispose()


def serve(data_dir: Path, port: int, interval: float) -> None:
    import uvicorn
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from wirewarden.web.app import create_app

    container = build(data_dir)
    container.reconciler.reconcile()  # every peer into the fake device, as serve's first pass
    app = create_app(container, run_loop=False)
    app.state.status_hub.interval = interval

    def timed(inner: ASGIApp) -> ASGIApp:
        async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
            start = time.perf_counter()

            async def send_with_time(message: Message) -> None:
                if message["type"] == "http.response.start":
                    ms = (time.perf_counter() - start) * 1000
                    message["headers"] = [
                        *message["headers"],
                        (b"x-server-ms", f"{ms:.3f}".encode()),
                    ]
                await send(message)

            await inner(scope, receive, send_with_time if scope["type"] == "http" else send)

        return wrapper

    uvicorn.run(timed(app), host="127.0.0.1", port=port, log_level="warning")


def sign_in(client: httpx.Client) -> None:
    page = client.get("/login")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post(
        "/login", data={"name": "operator", "password": PASSWORD, "csrf_token": csrf, "next": "/"}
    )
    if "ww_session" not in client.cookies:
        raise SystemExit(f"sign-in failed: {answer.status_code} {answer.text[:300]}")


def time_pages(client: httpx.Client, label: str, urls: list[str], headers: Any = None) -> None:
    server, wall = [], []
    for url in urls:
        start = time.perf_counter()
        answer = client.get(url, headers=headers)
        wall.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"{url}: {answer.status_code} {answer.text[:300]}")
        server.append(float(answer.headers["x-server-ms"]))
    print(f"  {label:34s} server {summary(server)}")
    print(f"  {'':34s} client {summary(wall)}")


async def fan_out(
    port: int,
    cookie: str,
    pid: int,
    dashboards: int,
    ticks: int,
    interval: float,
    page_ids: list[list[int]],
) -> None:
    received: list[list[int]] = [[] for _ in range(dashboards)]
    headers = {"Cookie": f"ww_session={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    sockets = []
    for i in range(dashboards):
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/status", additional_headers=headers
        )
        await ws.send(json.dumps({"watch": page_ids[i % len(page_ids)], "overview": True}))
        sockets.append(ws)

    async def reader(i: int, ws: Any) -> None:
        async for message in ws:
            received[i].append(len(message))

    tasks = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
    await asyncio.sleep(interval * 2.5)  # past the first full-state message
    for r in received:
        r.clear()
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(interval * ticks)
    cpu1, t1 = cpu_seconds(pid), time.perf_counter()
    for task in tasks:
        task.cancel()
    for ws in sockets:
        await ws.close()
    counts = [len(r) for r in received]
    sizes = [s for r in received for s in r]
    elapsed_ticks = (t1 - t0) / interval
    print(
        f"  {dashboards} dashboards x {elapsed_ticks:.1f} ticks of {interval:.1f} s: "
        f"{sum(counts)} messages, {min(counts)}-{max(counts)} per dashboard"
    )
    print(
        f"  bytes per update per dashboard: median {statistics.median(sizes):.0f}, "
        f"max {max(sizes)}; all dashboards per tick: {sum(sizes) / elapsed_ticks / 1024:.1f} KiB"
    )
    cpu_ms = (cpu1 - cpu0) / elapsed_ticks * 1000
    print(
        f"  serve CPU per tick (snapshot of every peer + diff + sends): {cpu_ms:.1f} ms "
        f"= {cpu_ms / (interval * 10):.1f} % of one core at one tick per {interval:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--dashboards", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="wwbench-dash-")) / "data"
    print(f"dashboard_10k: {args.peers} peers, load average {os.getloadavg()[0]:.2f}")
    start = time.perf_counter()
    populate(data_dir, args.peers)
    print(f"  populated in {time.perf_counter() - start:.1f} s")

    port = random.randint(20000, 40000)
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=serve, args=(data_dir, port, args.interval), daemon=True)
    child.start()
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, follow_redirects=True, timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or not child.is_alive():
                    raise SystemExit("the app did not start")
                time.sleep(0.2)
            sign_in(client)
            pages = max(1, args.peers // 50)
            page = f"/interfaces/{IFNAME}"
            rnd = random.Random(7)
            print("Interface page, 50 peers a page:")
            time_pages(
                client,
                "sorted by name, random pages",
                [f"{page}?page={rnd.randint(1, pages)}" for _ in range(args.requests)],
            )
            time_pages(
                client,
                "sorted by last handshake (live)",
                [
                    f"{page}?sort=handshake&dir=desc&page={rnd.randint(1, pages)}"
                    for _ in range(args.requests)
                ],
            )
            time_pages(
                client,
                "search (name contains)",
                [
                    f"{page}?q=peer-0{rnd.randint(0, 9)}{rnd.randint(0, 9)}"
                    for _ in range(args.requests)
                ],
            )
            time_pages(
                client,
                "htmx partial (table only)",
                [
                    f"{page}?page={rnd.randint(1, pages)}&sort=transfer"
                    for _ in range(args.requests)
                ],
                headers={"HX-Request": "true"},
            )
            cookie = client.cookies["ww_session"]
        page_ids = [
            list(range(1 + 100 * i, 101 + 100 * i)) for i in range(max(1, args.peers // 100))
        ]
        print("WebSocket fan-out of every peer's status (all change every tick):")
        asyncio.run(
            fan_out(
                port, cookie, child.pid or 0, args.dashboards, args.ticks, args.interval, page_ids
            )
        )
        hub_snapshot(data_dir)
    finally:
        child.terminate()
        child.join(10)


def hub_snapshot(data_dir: Path) -> None:
    from wirewarden.web.ui.live import StatusHub

    container = build(data_dir)
    container.reconciler.reconcile()
    hub = StatusHub(container)
    times = []
    for _ in range(10):
        start = time.perf_counter()
        snap = hub.snapshot()
        times.append((time.perf_counter() - start) * 1000)
    print(f"  hub snapshot of {len(snap.status)} peers alone (incl. the dump): {summary(times)}")


if __name__ == "__main__":
    sys.exit(main())

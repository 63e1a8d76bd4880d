"""A fleet under load: one control plane (`wirewarden serve` on a private PostgreSQL) and
N simulated agents speaking the real protocol over real WebSockets (enrolment, hello,
snapshot, digest-checked deltas, acks, heartbeats every 10 s), each holding its state
with the agent's own code (agent/held.py) and a data plane of nothing. Measures:

- connecting every agent: time until all hold their snapshot, per-agent snapshot latency;
- a peer change through the API until the node's agent holds it (p50/p99), with changes
  spread over random nodes one after the other;
- the control plane's CPU while only heartbeats arrive, and its RSS;
- PostgreSQL bytes per peer.

Runs as root in a network namespace of its own (serve's own node reconciles nothing
there). Prints figures, asserts nothing; anchors' published figures beside ours.

    sudo .venv/bin/python bench/fleet_sim.py [--nodes 100] [--peers 100] [--changes 200]
    sudo .venv/bin/python bench/fleet_sim.py --nodes 100 --peers 10000 --seed bulk

`--seed api` (the default) makes every peer through the peer service, as the API does (a
transaction, an address allocation and a revision each: about 20 ms a peer here, so a
million take hours); `--seed bulk` writes the same rows (generated keys, sealed by the
vault, consecutive addresses) in batches of 5,000 with one revision a node, the way a
restore or a migration would fill a database: what is measured afterwards is the same.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import insert, select

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))

from tests.pg import Cluster, unavailable  # noqa: E402

from netns_run import cpu_seconds, log, ms, pct, run_in_netns  # noqa: E402
from wirewarden.agent.held import Held, Resync, received  # noqa: E402
from wirewarden.bootstrap import Container, build  # noqa: E402
from wirewarden.config import Settings  # noqa: E402
from wirewarden.dataplane.fake import FakeDataplane  # noqa: E402
from wirewarden.domain import ipam  # noqa: E402
from wirewarden.domain.keys import generate_keypair, generate_preshared_key  # noqa: E402
from wirewarden.fleet.client import Server, SocketLink, Unreachable, open_link  # noqa: E402
from wirewarden.fleet.protocol import Ack, Heartbeat, Hello, ReportAck  # noqa: E402
from wirewarden.services.context import SYSTEM, bump_revision  # noqa: E402
from wirewarden.services.interfaces import addresses_of  # noqa: E402
from wirewarden.services.node_schemas import NodeCreate  # noqa: E402
from wirewarden.services.schemas import InterfaceCreate, PeerCreate  # noqa: E402
from wirewarden.store.tables import Interface, Peer  # noqa: E402

WIREWARDEN = str(Path(sys.executable).with_name("wirewarden"))
LISTEN = "127.0.0.1:8000"
ANCHORS = (
    "NetBird: updates debounced 1 s per peer; headscale: 800 ms change batcher, users report "
    "trouble at 300-500 nodes (headscale#2491, #1656)"
)


def populate(
    settings: Settings, nodes: int, peers: int, seed: str
) -> tuple[list[str], list[list[int]], str]:
    """Nodes with one interface of `peers` peers each; their join tokens, peer ids and an
    admin token."""
    c = build(settings, dataplane=FakeDataplane(), runtime=False)
    tokens, ids = [], []
    for i in range(nodes):
        made = c.nodes.add(NodeCreate(name=f"n{i:03d}", region="eu", capacity=10**6), SYSTEM)
        tokens.append(made.join_token)
        # One /16 a node (nodes' networks may not overlap); every node its own port space.
        iface = InterfaceCreate(
            name=f"wn{i:03d}", address=f"10.{64 + i}.0.1/16", node=f"n{i:03d}", listen_port=51820
        )
        c.interfaces.create(iface, SYSTEM)
    started = time.perf_counter()

    def fill(i: int) -> list[int]:
        if seed == "bulk":
            return bulk_peers(c, f"wn{i:03d}", peers)
        return [
            c.peers.create(f"wn{i:03d}", PeerCreate(name=f"p{j}"), SYSTEM).id for j in range(peers)
        ]

    with ThreadPoolExecutor(4 if seed == "api" else 2) as pool:
        ids = list(pool.map(fill, range(nodes)))
    log(f"{nodes} nodes x {peers} peers made in {time.perf_counter() - started:.0f} s")
    admin = c.tokens.create("bench", ["read", "write", "admin"], SYSTEM)
    c.engine.dispose()
    return tokens, ids, admin


def bulk_peers(c: Container, interface: str, count: int, batch: int = 5000) -> list[int]:
    """`count` peers on `interface` as PeerService.create makes them (a generated key pair
    and pre-shared key sealed by the vault, the next free addresses, the defaults of
    PeerCreate), inserted in batches, then one revision of the interface's node."""
    defaults = PeerCreate(name="p0")
    with c.deps.sessions.begin() as db:
        iface = db.scalars(select(Interface).where(Interface.name == interface)).one()
        pool = ipam.pool_for(addresses_of(iface))
        ids: list[int] = []
        for start in range(0, count, batch):
            rows = []
            for j in range(start, min(count, start + batch)):
                keys = generate_keypair()
                index = j + 2  # .1 is the gateway
                rows.append(
                    {
                        "interface_id": iface.id,
                        "name": f"p{j}",
                        "host_index": index,
                        "ipv4": str(pool.v4_at(index)),
                        "public_key": keys.public_key,
                        "private_key_enc": c.deps.vault.encrypt(keys.private_key),
                        "preshared_key_enc": c.deps.vault.encrypt(generate_preshared_key()),
                        "allowed_ips": defaults.allowed_ips,
                        "routed_ips": defaults.routed_ips,
                        "enabled": True,
                        "sync_state": "applied",
                    }
                )
            ids += db.scalars(insert(Peer).returning(Peer.id), rows).all()
        bump_revision(db, iface.node_id)
    return ids


@dataclass
class SimAgent:
    node: str
    credential: str
    held: Held | None = None
    link: SocketLink | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    snapshot_s: float = 0.0
    resyncs: int = 0
    reconnects: int = 0

    async def run(self, server: Server, connected: float) -> None:
        """As the agent does: a dropped link is dialled again after a jittered pause,
        saying the revision held (the control plane answers with a delta or a snapshot)."""
        while True:
            try:
                await self.session(server, connected)
            except (Unreachable, OSError):
                self.reconnects += 1
                await asyncio.sleep(random.uniform(0.5, 2.0))

    async def session(self, server: Server, connected: float) -> None:
        link = await open_link(server, self.credential)
        assert isinstance(link, SocketLink)
        self.link = link
        await link.send(self.hello())
        beating = asyncio.create_task(self.beat())
        try:
            while True:
                message = await link.receive()
                if isinstance(message, ReportAck):
                    continue
                try:
                    # Off the event loop: a hundred agents share this process, and a
                    # 10,000-peer snapshot takes a third of a second to digest; the loop
                    # must keep answering the links' pings meanwhile.
                    new = await asyncio.to_thread(received, self.held, message)
                except Resync:
                    self.resyncs += 1
                    await link.send(self.hello())
                    continue
                if new is None:
                    continue
                if self.held is None:
                    self.snapshot_s = time.perf_counter() - connected
                self.held = new
                self.arrived.set()
                await link.send(Ack(revision=new.revision, hash=new.hash, in_sync=True))
        finally:
            beating.cancel()
            await link.close()

    def hello(self) -> Hello:
        held = self.held
        return Hello(
            node=self.node,
            version="sim",
            revision=held.revision if held else 0,
            hash=held.hash if held else "",
        )

    async def beat(self) -> None:
        await asyncio.sleep(random.uniform(0, 10))
        while True:
            assert self.link is not None
            beat = Heartbeat(
                peers=0,
                online_peers=0,
                rx_bps=0,
                tx_bps=0,
                cpu_percent=1.0,
                version="sim",
                uptime_s=1,
            )
            await self.link.send(beat)
            await asyncio.sleep(10)


def database_size(cluster: Cluster, name: str) -> int:
    import psycopg

    with psycopg.connect(
        host=str(cluster.base), port=cluster.port, user="postgres", dbname=name
    ) as conn:
        row = conn.execute("select pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def drive(
    args: argparse.Namespace, tokens: list[str], ids: list[list[int]], admin: str, serve: int
) -> None:
    server = Server(f"http://{LISTEN}")
    async with httpx.AsyncClient(
        base_url=f"http://{LISTEN}/api/v1", headers={"Authorization": f"Bearer {admin}"}, timeout=60
    ) as api:
        before = cpu_seconds(serve)
        await asyncio.sleep(args.idle)
        alone = cpu_seconds(serve) - before
        log(f"control plane CPU with no agent: {alone / args.idle * 100:.2f} % of a core")
        agents = []
        for token in tokens:
            enrolled = (await api.post("/agent/enrol", json={"join_token": token})).json()
            agents.append(SimAgent(enrolled["node"], enrolled["credential"]))
        started = time.perf_counter()
        tasks = [asyncio.create_task(a.run(server, started)) for a in agents]
        await asyncio.wait_for(asyncio.gather(*(a.arrived.wait() for a in agents)), 600)
        whole = time.perf_counter() - started
        snaps = [a.snapshot_s for a in agents]
        log(f"{len(agents)} agents connected, all holding their snapshot in {whole:.2f} s")
        log(f"  snapshot per agent: p50 {ms(pct(snaps, 50))}, p99 {ms(pct(snaps, 99))}")

        before = cpu_seconds(serve)
        await asyncio.sleep(args.idle)
        busy = cpu_seconds(serve) - before
        log(
            f"control plane CPU with {len(agents)} agents heartbeating every 10 s: "
            f"{busy / args.idle * 100:.2f} % of a core "
            f"({(busy - alone) / args.idle * 100:.2f} % more than with none)"
        )

        latencies = []
        for r in range(args.changes):
            i = random.randrange(len(agents))
            agent = agents[i]
            agent.arrived.clear()
            peer = random.choice(ids[i])
            t0 = time.perf_counter()
            answer = await api.patch(f"/peers/{peer}", json={"rate_down_kbit": 1000 + r})
            assert answer.status_code == 200, answer.text
            await asyncio.wait_for(agent.arrived.wait(), 30)
            latencies.append(time.perf_counter() - t0)
        log(
            f"peer change (API call to the node's agent holding it), {args.changes} changes: "
            f"p50 {ms(pct(latencies, 50))}, p99 {ms(pct(latencies, 99))}, "
            f"max {ms(max(latencies))}"
        )
        log(f"resyncs asked by agents: {sum(a.resyncs for a in agents)}")
        log(f"links dialled again: {sum(a.reconnects for a in agents)}")
        log(f"control plane RSS: {rss_mb(serve):.0f} MB")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def start_serve(env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    """`wirewarden serve` with these settings, once its /healthz answers."""
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [WIREWARDEN, "serve"], env={**os.environ, **env}, stdout=out, stderr=out
        )
    listen = env["WIREWARDEN_HTTP"]
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://{listen}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(log_file.read_text())
        time.sleep(0.2)


def inner(args: argparse.Namespace) -> int:
    why = unavailable()
    if why:
        log(why)
        return 1
    cluster = Cluster.start()
    proc = None
    try:
        name = cluster.create_database()
        url = cluster.url(name)
        work = Path(args.workdir)
        env = {
            "WIREWARDEN_DATA_DIR": str(work / "cp"),
            "WIREWARDEN_DATABASE_URL": url,
            "WIREWARDEN_HTTP": LISTEN,
            "WIREWARDEN_NODE_NAME": "cp",
            "WIREWARDEN_LOG_LEVEL": "warning",
        }
        settings = Settings(data_dir=work / "cp", database_url=url, node_name="cp")
        build(settings, dataplane=FakeDataplane(), runtime=False).engine.dispose()
        empty = database_size(cluster, name)  # the schema and defaults alone
        tokens, ids, admin = populate(settings, args.nodes, args.peers, args.seed)
        proc = start_serve(env, work / "serve.log")
        asyncio.run(drive(args, tokens, ids, admin, proc.pid))
        total = args.nodes * args.peers
        size = database_size(cluster, name) - empty
        log(f"PostgreSQL: {size / total:.0f} bytes per peer ({total} peers, beyond the schema)")
        log(f"anchors: {ANCHORS}")
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        cluster.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--peers", type=int, default=100, help="peers per node")
    p.add_argument("--changes", type=int, default=200)
    p.add_argument("--seed", choices=("api", "bulk"), default="api", help="how peers are made")
    p.add_argument("--idle", type=float, default=30.0, help="seconds of heartbeats measured")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not args.inner:
        return run_in_netns(HERE, "wwfleet", ())
    return inner(args)


if __name__ == "__main__":
    sys.exit(main())

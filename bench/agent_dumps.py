"""A real fleet node's agent at N peers, idle: the WireGuard dumps it takes a minute, the
CPU it uses (its commands included) and its wireguard-go's, against another tree's code
(`--against DIR`) run by run in turn on the same node, same peers.

Run as root from the repository root:

    .venv/bin/python bench/agent_dumps.py                              # this tree alone
    .venv/bin/python bench/agent_dumps.py --against /tmp/old --rounds 2

With the test topology (tests/netns): the control plane (`serve` on a private PostgreSQL,
https with a private CA) in the inet namespace, `wirewarden agent` with real wireguard-go
in the server namespace, the default periods (reconcile 10 s, report 10 s, heartbeat
10 s). A `wg` on the agent's PATH before the real one notes the time of each
`wg show all dump` and runs the real tool. Each round starts the agent (the other
tree's through PYTHONPATH), lets it settle, then counts for `--seconds`; the agent is
stopped between runs (its tunnels stay up). It prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.netns.product import WIREWARDEN, Product
from tests.netns.topology import Topology, wait_until
from tests.pg import Cluster, unavailable
from tests.tlsca import Issued, issue

from netns_run import cpu_seconds

CP = f"{Topology.inet_ip}:8443"
SHIM = """#!/bin/sh
if [ "$1 $2 $3" = "show all dump" ]; then date +%s.%N >> {log}; fi
exec {wg} "$@"
"""
ADD_PEERS = """
import httpx, sys
base, token, ca, iface, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
with httpx.Client(base_url=base + "/api/v1", headers={"Authorization": "Bearer " + token},
                  verify=ca, timeout=60) as http:
    for i in range(n):
        r = http.post(f"/interfaces/{iface}/peers", json={"name": f"p{i}"})
        assert r.status_code == 201, r.text
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--settle", type=float, default=25, help="seconds before counting")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", type=Path, help="another tree, its agent in turn")
    args = parser.parse_args()
    why = unavailable()
    if why:
        sys.exit(why)
    cluster = Cluster.start()
    try:
        url = cluster.url(cluster.create_database())
        with Topology() as topology:
            tls = issue(topology.workdir / "tls", [Topology.inet_ip])
            env = {
                "WIREWARDEN_DATABASE_URL": url,
                "WIREWARDEN_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                "WIREWARDEN_TLS_CERT": str(tls.cert),
                "WIREWARDEN_TLS_KEY": str(tls.key),
                "WIREWARDEN_NODE_NAME": "cp",
                "WIREWARDEN_DNS_ENABLED": "false",
            }
            control = Product(
                topology, netns=topology.inet, listen=CP, cacert=tls.ca, env=env, name="cp"
            )
            try:
                control.start(timeout=30)
                run(topology, control, tls, args)
            finally:
                control.close()
    finally:
        cluster.stop()


def run(topology: Topology, control: Product, tls: Issued, args: argparse.Namespace) -> None:
    join = control.api("POST", "/nodes", {"name": "n1"}, expect=201)["join_token"]
    body = {"name": "wgb0", "node": "n1", "address": "10.71.0.1/16", "listen_port": 51900}
    control.api("POST", "/interfaces", body, expect=201)
    t = time.monotonic()
    argv = [sys.executable, "-c", ADD_PEERS, control.base_url, control.token, str(tls.ca)]
    control.server.run([*argv, "wgb0", str(args.peers)], timeout=3600)
    print(f"{args.peers} peers added in {time.monotonic() - t:.0f} s")
    shims = topology.workdir / "shim"
    shims.mkdir()
    log = topology.workdir / "dumps.log"
    (shims / "wg").write_text(SHIM.format(log=log, wg="/usr/bin/wg"))
    (shims / "wg").chmod(0o755)
    data = topology.workdir / "agent-data"
    base_env = {
        "WIREWARDEN_DATA_DIR": str(data),
        "WIREWARDEN_AGENT_JOIN_TOKEN": join,
        "WIREWARDEN_WG_IMPLEMENTATION": "wireguard-go",
        "WIREWARDEN_DNS_ENABLED": "false",
        "PATH": f"{shims}:{os.environ['PATH']}",
    }
    trees = [("this tree", {})]
    if args.against is not None:
        trees.append((str(args.against), {"PYTHONPATH": str(args.against.resolve() / "src")}))
    agent_argv = [WIREWARDEN, "agent", "--server", f"https://{CP}", "--ca-file", str(tls.ca)]
    for round_ in range(args.rounds):
        for name, extra in trees if round_ % 2 == 0 else trees[::-1]:
            proc = topology.server.popen(
                agent_argv, env={**base_env, **extra}, log_path=str(topology.workdir / "agent.log")
            )
            try:
                wait_until(lambda: applied(control), timeout=120, what="the node in sync")
                time.sleep(args.settle)
                wg = wireguard_go(topology)
                start, cpu = time.time(), cpu_seconds(proc.pid, ended_children=True)
                wg_cpu = sum(cpu_seconds(pid) for pid in wg)
                time.sleep(args.seconds)
                used = cpu_seconds(proc.pid, ended_children=True) - cpu
                wg_used = sum(cpu_seconds(pid) for pid in wg) - wg_cpu
                dumps = sum(
                    start <= float(line) < start + args.seconds for line in log.read_text().split()
                )
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
            per_minute = dumps * 60 / args.seconds
            print(
                f"{name}: {per_minute:.0f} dumps a minute; the agent and its commands "
                f"{used / args.seconds * 100:.1f} % of a core, wireguard-go (answering "
                f"them) {wg_used / args.seconds * 100:.1f} % ({args.peers} peers, idle)"
            )


def wireguard_go(topology: Topology) -> list[int]:
    return [
        pid
        for pid in topology.server.pids()
        if Path(f"/proc/{pid}/comm").read_text().strip() == "wireguard-go"
    ]


def applied(control: Product) -> bool:
    node = control.api("GET", "/nodes/n1")
    return bool(node["status"] == "online" and node["applied_revision"] == node["revision"])


if __name__ == "__main__":
    main()

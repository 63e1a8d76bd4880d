"""Network policy figures at 10,000 peers with mixed policies (DESIGN.md §7, issue 7).

Run as root from the repository root:

    .venv/bin/python bench/policy_10k.py                 # about a minute
    .venv/bin/python bench/policy_10k.py --peers 1000 --seconds 3   # a quick look

What it does, in three network namespaces it creates and removes (srv, cli, inet; traffic
only between them):
1. a WireGuard tunnel cli -> srv (wireguard-go both ends) and an iperf3 server in inet,
   srv forwarding cli's traffic to inet;
2. a desired policy of N peers on srv's interface, mixed: a third internet-only, a sixth
   intranet-only, a sixth a custom profile, a quarter mesh, a third with download and
   upload limits, a fifth with a data cap; the real client peer is internet-only with a
   (large) cap, so its packets take the quota and ACL lookups, and its traffic crosses the
   HTB root and the IFB redirect like everyone's;
3. full ruleset apply time: the whole table (`nft -f`, table deleted and recreated in the
   same transaction) `--rounds` times; the tc plan for all limited peers from nothing;
4. one peer's policy change: the Reconciler's single-peer path (set elements + quota in one
   `nft -f`, its tc class) with all of the above present, p50/max over 20 changes;
5. iperf3 throughput cli -> inet (upload) through the tunnel with the ruleset and qdiscs
   present and without them (the table every install has: forwarding + masquerade, no
   policy; no qdiscs), alternating `--rounds` times; prints the ratio. `--only nft|tc`
   applies only one of the two, to see which costs what.
It prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

from wirewarden.dataplane import nft, tc
from wirewarden.domain import firewall, tcplan
from wirewarden.domain.keys import generate_keypair
from wirewarden.domain.policy import AclRule, Cap, PeerPolicy, PolicyState, Profile
from wirewarden.domain.state import NatNetwork
from wirewarden.reconciler.engine import Reconciler

# The --inside run is the same process image in the server namespace: it reuses the names.
TOKEN = os.environ.get("WWB_TOKEN") or secrets.token_hex(3)
NS = {role: f"wwb{TOKEN}-{role}" for role in ("srv", "cli", "inet")}
WG_SRV, WG_CLI = f"wbs{TOKEN}", f"wbc{TOKEN}"
NET = "10.96.0.0/16"
CLIENT_IP = "10.96.255.250"


def sh(ns: str | None, *argv: str, stdin: str | None = None) -> str:
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    res = subprocess.run(full, input=stdin, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(full)}: {res.stderr.strip()}")
    return res.stdout


def build_topology() -> None:
    for ns in NS.values():
        sh(None, "ip", "netns", "add", ns)
        sh(ns, "ip", "link", "set", "lo", "up")
    srv, cli, inet = NS["srv"], NS["cli"], NS["inet"]
    sh(
        None,
        "ip",
        "link",
        "add",
        "bv0",
        "netns",
        cli,
        "type",
        "veth",
        "peer",
        "name",
        "bv1",
        "netns",
        srv,
    )
    sh(
        None,
        "ip",
        "link",
        "add",
        "bv2",
        "netns",
        srv,
        "type",
        "veth",
        "peer",
        "name",
        "bv3",
        "netns",
        inet,
    )
    for ns, dev, addr in (
        (cli, "bv0", "192.0.2.2/30"),
        (srv, "bv1", "192.0.2.1/30"),
        (srv, "bv2", "203.0.113.2/24"),
        (inet, "bv3", "203.0.113.1/24"),
    ):
        sh(ns, "ip", "addr", "add", addr, "dev", dev)
        sh(ns, "ip", "link", "set", dev, "up")
    sh(srv, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    sh(inet, "ip", "route", "add", "10.96.0.0/16", "via", "203.0.113.2")
    s, c = generate_keypair(), generate_keypair()
    for ns, name, key, port in ((srv, WG_SRV, s, "51999"), (cli, WG_CLI, c, "51998")):
        sh(ns, "wireguard-go", name)
        sh(
            ns,
            "wg",
            "set",
            name,
            "listen-port",
            port,
            "private-key",
            "/dev/stdin",
            stdin=key.private_key,
        )
        sh(ns, "ip", "link", "set", name, "mtu", "1420", "up")
    sh(srv, "ip", "addr", "add", "10.96.0.1/16", "dev", WG_SRV)
    sh(srv, "wg", "set", WG_SRV, "peer", c.public_key, "allowed-ips", f"{CLIENT_IP}/32")
    sh(cli, "ip", "addr", "add", f"{CLIENT_IP}/16", "dev", WG_CLI)
    sh(
        cli,
        "wg",
        "set",
        WG_CLI,
        "peer",
        s.public_key,
        "allowed-ips",
        "0.0.0.0/0",
        "endpoint",
        "192.0.2.1:51999",
    )
    sh(cli, "ip", "route", "add", "203.0.113.0/24", "dev", WG_CLI)
    subprocess.Popen(
        ["ip", "netns", "exec", inet, "iperf3", "-s", "-B", "203.0.113.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    sh(cli, "ping", "-c", "3", "-i", "0.2", "-W", "2", "203.0.113.1")


def teardown() -> None:
    for ns in NS.values():
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in pids.stdout.split():
            subprocess.run(["kill", "-9", pid], check=False)
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
    for name in (WG_SRV, WG_CLI):
        Path(f"/var/run/wireguard/{name}.sock").unlink(missing_ok=True)


def policy(n: int) -> PolicyState:
    peers = []
    for i in range(n):
        index = i + 2
        ip = f"10.96.{index >> 8}.{index & 0xFF}"
        acl = ("internet-only", "full", "intranet-only", "internet-only", "lanweb", "full")[i % 6]
        limited = i % 3 == 0
        peers.append(
            PeerPolicy(
                WG_SRV,
                1000 + i,
                index,
                ip,
                f"fd96::{index:x}",
                acl,
                mesh=i % 4 == 0,
                rate_down_kbit=10000 + i if limited else None,
                rate_up_kbit=5000 + i if limited else None,
                cap=Cap(10**9 + i, 1_700_000_000) if i % 5 == 0 else None,
            )
        )
    me = PeerPolicy(
        WG_SRV, 1, 0xFFFA, CLIENT_IP, None, "internet-only", cap=Cap(10**15, 1_700_000_000)
    )
    lanweb = Profile("lanweb", (AclRule("allow", "10.20.0.0/24", "tcp", 80, 80),), "deny")
    return PolicyState(
        peers=(*peers, me),
        profiles=(lanweb,),
        lan_networks=("10.20.0.0/24",),
        gateways=((WG_SRV, "10.96.0.1"),),
        interfaces=(WG_SRV,),
        leaf_qdisc="fq_codel",
    )


def inside(args: argparse.Namespace) -> None:
    """Runs in the server namespace: the nft/tc timings."""
    pol = policy(args.peers)
    nat = (NatNetwork(WG_SRV, NET),)
    rs = firewall.ruleset(nat, "bv2", pol)
    script = firewall.full_script(rs)
    times = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        nft.apply_ruleset(script)
        times.append(time.perf_counter() - t)
    seen = nft.observe()
    assert seen is not None and seen.digest == rs.skeleton_digest
    t = time.perf_counter()
    seen = nft.observe()
    observe_s = time.perf_counter() - t
    down, up = tcplan.wanted(pol.peers, WG_SRV)
    driver = tc.TcDriver()
    t = time.perf_counter()
    changes = tcplan.plan(WG_SRV, down, up, tc.observe(WG_SRV, up.device), pol.leaf_qdisc)
    driver.apply(changes)
    tc_s = time.perf_counter() - t
    t = time.perf_counter()
    have = tc.observe(WG_SRV, up.device)
    tc_observe_s = time.perf_counter() - t
    left = tcplan.plan(WG_SRV, down, up, have, pol.leaf_qdisc)
    one = one_peer_changes(pol)
    if args.only == "nft":
        for argv in (
            ["qdisc", "del", "dev", WG_SRV, "root"],
            ["qdisc", "del", "dev", WG_SRV, "ingress"],
        ):
            subprocess.run(["tc", *argv], check=False)
    if args.only == "tc":
        bare = firewall.ruleset((NatNetwork(WG_SRV, NET),), "bv2", PolicyState())
        nft.apply_ruleset(firewall.full_script(bare))
    print(
        json.dumps(
            {
                "nft_full_apply_s": times,
                "elements": len(rs.layer.elements),
                "quotas": len(rs.layer.quotas),
                "nft_observe_s": observe_s,
                "tc_classes": len(down.classes) + len(up.classes),
                "tc_apply_s": tc_s,
                "tc_observe_s": tc_observe_s,
                "tc_left_after_apply": len(left.lines),
                "leaf": "fq_codel" if driver.leaf_ok else "pfifo (no fq_codel in this kernel)",
                "one_peer_change_s": one,
            }
        )
    )


def one_peer_changes(pol: PolicyState) -> list[float]:
    """The single-peer path of the Reconciler, with the real drivers."""
    from wirewarden.dataplane.linux import LinuxDataplane

    class NoWg:  # the single-peer policy path never touches WireGuard
        def reap(self) -> None: ...

    dataplane = LinuxDataplane(NoWg())  # type: ignore[arg-type]
    # As in serve, where every reconcile pass leaves its look at tc and the table behind.
    dataplane.observe_tc(WG_SRV)
    dataplane.observe_firewall()
    rec = Reconciler(lambda: None, dataplane)  # type: ignore[arg-type]
    out = []
    peers = [p for p in pol.peers if p.rate_down_kbit][:20]
    for i, old in enumerate(peers):
        acl = "intranet-only" if old.acl != "intranet-only" else "full"
        new = PeerPolicy(
            old.interface,
            old.peer_id,
            old.index,
            old.ipv4,
            old.ipv6,
            acl,
            not old.mesh,
            2000 + i,
            1000 + i,
            Cap(5 * 10**9, 1_700_000_000),
        )
        t = time.perf_counter()
        rec.apply_policy(old, new, pol.leaf_qdisc)
        out.append(time.perf_counter() - t)
    return out


def iperf(seconds: float) -> float:
    out = sh(NS["cli"], "iperf3", "-c", "203.0.113.1", "-t", str(seconds), "-J")
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--inside", action="store_true")
    parser.add_argument(
        "--only", choices=("nft", "tc"), help="apply only the ruleset or only the qdiscs"
    )
    args = parser.parse_args()
    if args.inside:
        inside(args)
        return
    try:
        build_topology()
        bare = []
        policed = []
        here = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--inside",
            "--peers",
            str(args.peers),
            "--rounds",
            str(args.rounds),
            *(["--only", args.only] if args.only else []),
        ]
        figures = {}
        for round_ in range(args.rounds):
            # Each side measured 2 s after the change, so neither pays for the other's set-up.
            out = sh(NS["srv"], "env", f"WWB_TOKEN={TOKEN}", *here)
            figures = json.loads(out.strip().splitlines()[-1])
            time.sleep(2)
            policed.append(iperf(args.seconds))
            # Without policy = the table the product has anyway (forwarding + masquerade).
            bare_table = firewall.full_script(
                firewall.ruleset((NatNetwork(WG_SRV, NET),), "bv2", PolicyState())
            )
            sh(NS["srv"], "nft", "-f", "-", stdin=bare_table)
            for argv in (
                ("tc", "qdisc", "del", "dev", WG_SRV, "root"),
                ("tc", "qdisc", "del", "dev", WG_SRV, "ingress"),
                ("ip", "link", "del", tcplan.ifb_name(WG_SRV)),
            ):
                subprocess.run(["ip", "netns", "exec", NS["srv"], *argv], capture_output=True)
            time.sleep(2)
            bare.append(iperf(args.seconds))
            print(
                f"round {round_ + 1}: without {bare[-1]:.1f} Mbit/s, with {policed[-1]:.1f}",
                flush=True,
            )
        full = figures["nft_full_apply_s"]
        one = figures["one_peer_change_s"]
        print(
            f"peers: {args.peers} (+1 real client), elements {figures['elements']}, "
            f"quotas {figures['quotas']}, tc classes {figures['tc_classes']}, "
            f"leaf {figures['leaf']}"
        )
        print(
            f"full ruleset apply (nft -f, whole table): median {statistics.median(full):.3f} s,"
            f" max {max(full):.3f} s (target < 1 s); "
            f"observing the table {figures['nft_observe_s']:.3f} s"
        )
        print(
            f"tc plan from nothing: {figures['tc_apply_s']:.3f} s; observing tc "
            f"{figures['tc_observe_s']:.3f} s; "
            f"lines left after apply {figures['tc_left_after_apply']}"
        )
        print(
            f"one peer's policy change (nft elements + quota + tc class): median "
            f"{statistics.median(one) * 1000:.1f} ms, max {max(one) * 1000:.1f} ms"
        )
        mb, mp = statistics.median(bare), statistics.median(policed)
        print(
            f"iperf3 upload through the tunnel: without policy {mb:.1f} Mbit/s, with "
            f"{mp:.1f} Mbit/s, ratio {mp / mb:.3f} (loss {100 * (1 - mp / mb):.1f} %, target < 5 %)"
        )
    finally:
        teardown()


if __name__ == "__main__":
    main()

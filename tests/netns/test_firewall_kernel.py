"""Our table as the kernel holds it: what `nft -j` lists parses back to exactly the
elements we asked for (peer, interface and expose sets and maps alike), so the
reconciler's next pass has nothing to change, and a new tenant's interface is added by
elements alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.netns

# Runs in a network namespace of its own (unshare --net): nft there touches nothing else.
SCRIPT = """
import json, sys
from wirewarden.dataplane import nft
from wirewarden.domain import firewall
from wirewarden.domain.dnsstate import DnsGuard
from wirewarden.domain.dnsnft import dns_section
from wirewarden.domain.exposure import Forward
from wirewarden.domain.policy import Cap, PeerPolicy, PolicyState
from wirewarden.domain.state import NatNetwork

def ruleset(tenants):
    names = [f"t-{i}" for i in range(tenants)]
    nat = [NatNetwork(n, f"10.88.{i}.0/24") for i, n in enumerate(names)]
    nat += [NatNetwork(n, f"fd88:{i + 1}::/64") for i, n in enumerate(names)]
    gws = [(n, f"10.88.{i}.1") for i, n in enumerate(names)]
    gws += [(n, f"fd88:{i + 1}::1") for i, n in enumerate(names)]
    peers = [
        PeerPolicy("t-0", 7, 2, "10.88.0.2", "fd88:1::2", "internet-only", mesh=True,
                   cap=Cap(10**9, 1_700_000_000)),
        PeerPolicy("t-1", 8, 2, "10.88.1.2", None, "intranet-only"),
    ]
    policy = PolicyState(peers=tuple(peers), gateways=tuple(gws), interfaces=tuple(names),
                         tenants=tuple((n,) for n in names))
    dns = {n: tuple(a for o, a in gws if o == n) for n in names}
    guard = DnsGuard(dns, ("10.88.1.2",), ("192.0.2.53",))
    forwards = [
        Forward("tcp", 8080, "10.88.0.2", 80),
        Forward("udp", 25565, "10.88.1.2", 25565, False),
    ]
    return firewall.ruleset(
        nat, "eth0", policy, extra=[dns_section(guard)], dns=dns, forwards=forwards
    )

two, three = ruleset(2), ruleset(3)
nft.apply_ruleset(firewall.full_script(two))
seen = nft.observe()
out = {
    "digest": seen.digest == two.skeleton_digest,
    "missing": sorted(map(str, two.layer.elements - seen.elements)),
    "extra": sorted(map(str, seen.elements - two.layer.elements)),
}
script = firewall.delta_script(seen.elements, three.layer.elements, seen.quotas, three.layer.quotas)
out["same_skeleton"] = three.skeleton_digest == two.skeleton_digest
out["delta"] = script.splitlines()
nft.apply_ruleset(script)
after = nft.observe()
out["after_missing"] = sorted(map(str, three.layer.elements - after.elements))
out["after_extra"] = sorted(map(str, after.elements - three.layer.elements))
print(json.dumps(out))
"""


def test_the_kernel_lists_back_what_we_wrote_and_a_tenant_is_elements_only() -> None:
    found = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    out = json.loads(found.stdout)
    assert out["digest"]
    assert out["missing"] == [] and out["extra"] == []
    # A third tenant: the same rules, its interface, gateways, networks and DNS target added.
    assert out["same_skeleton"]
    assert out["delta"] and all(line.startswith("add element") for line in out["delta"])
    assert all("t-2" in line or "10.88.2." in line or "fd88:3::" in line for line in out["delta"])
    assert out["after_missing"] == [] and out["after_extra"] == []

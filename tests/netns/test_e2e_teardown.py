"""Deleting an interface leaves nothing of ours in the kernel: its speed-limit IFB device
(with its HTB qdisc) and, once no interface is left, the `inet wirewarden` table."""

from __future__ import annotations

import json

import pytest

from tests.netns.product import Product
from tests.netns.topology import Topology, wait_until
from wirewarden.domain.tcplan import ifb_name, is_ours

pytestmark = pytest.mark.netns


def _ifbs(product: Product) -> set[str]:
    links = json.loads(product.server.run(["ip", "-j", "link", "show"]).stdout or "[]")
    return {str(link["ifname"]) for link in links if is_ours(str(link.get("ifname", "")))}


def _our_table(product: Product) -> bool:
    tables = product.server.run(["nft", "list", "tables"]).stdout.splitlines()
    return "table inet wirewarden" in tables


def test_deleting_the_last_interface_leaves_no_ifb_and_no_table(
    topology: Topology, product: Product
) -> None:
    name = topology.unique_ifname()
    product.create_interface(name=name, address="10.61.0.1/24", listen_port=51861)
    peer = product.create_peer(name, name="slow")
    product.api("PATCH", f"/peers/{peer['id']}", {"rate_down_kbit": 2000, "rate_up_kbit": 1000})
    # Before: the upload shaper and our table are there (else the test would prove nothing).
    wait_until(lambda: ifb_name(name) in _ifbs(product), timeout=10, what="the IFB device")
    qdiscs = product.server.run(["tc", "qdisc", "show", "dev", ifb_name(name)]).stdout
    assert "htb 1:" in qdiscs
    assert _our_table(product)

    product.api("DELETE", f"/interfaces/{name}", expect=204)
    wait_until(
        lambda: not _ifbs(product) and not _our_table(product),
        timeout=10,
        what="the IFB device and the inet wirewarden table to go",
    )
    # And they stay gone: later passes don't bring back an empty table.
    wait_until(lambda: product.api("GET", "/interfaces")["total"] == 0, timeout=5, what="list")
    links = json.loads(product.server.run(["ip", "-j", "link", "show"]).stdout)
    assert [link["ifname"] for link in links if is_ours(link["ifname"])] == []
    assert "inet wirewarden" not in product.server.run(["nft", "list", "tables"]).stdout

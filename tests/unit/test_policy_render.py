"""Table tests of the nftables ruleset renderer, the tc plan and cap periods."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from wirewarden.domain import firewall, tcplan
from wirewarden.domain.firewall import Element, Quota
from wirewarden.domain.policy import (
    AclRule,
    Cap,
    PeerPolicy,
    PolicyError,
    PolicyState,
    Profile,
    check_rules,
    parse_rule,
    period_bounds,
)
from wirewarden.domain.state import NatNetwork

NAT = (NatNetwork("wg0", "10.8.0.0/24"),)
A = PeerPolicy("wg0", 7, 2, "10.8.0.2", "fd00::2")


def layer(*peers: PeerPolicy) -> firewall.PeerLayer:
    return firewall.peer_layer(PolicyState(peers=peers))


@pytest.mark.parametrize(
    ("peer", "elements"),
    [
        (A, set()),
        (
            PeerPolicy("wg0", 7, 2, "10.8.0.2", "fd00::2", acl="internet-only"),
            {
                Element("acl4", "10.8.0.2", "jump acl_internet-only"),
                Element("acl6", "fd00::2", "jump acl_internet-only"),
            },
        ),
        (
            PeerPolicy("wg0", 7, 2, "10.8.0.2", mesh=True),
            {Element("mesh4", '"wg0" . 10.8.0.2')},
        ),
        (
            PeerPolicy("wg0", 7, 2, "10.8.0.2", cap=Cap(5000, 100)),
            {Element("quota4", "10.8.0.2", '"cap_7_100_5000"')},
        ),
    ],
)
def test_peer_elements(peer: PeerPolicy, elements: set[Element]) -> None:
    assert set(firewall.peer_elements(peer)) == elements


def test_skeleton_does_not_change_with_peers() -> None:
    """Per-peer policy lives in set elements: 1 peer or 10,000, the same rules."""
    one = firewall.ruleset(NAT, "eth0", PolicyState(peers=(A,)))
    many = PolicyState(
        peers=tuple(
            PeerPolicy("wg0", i, i, f"10.8.{i // 250}.{i % 250 + 2}", acl="internet-only")
            for i in range(1000)
        )
    )
    big = firewall.ruleset(NAT, "eth0", many)
    assert one.skeleton_digest == big.skeleton_digest
    assert len([e for e in big.layer.elements if e.set == "acl4"]) == 1000
    script = firewall.full_script(big)
    assert script.startswith("table inet wirewarden\ndelete table inet wirewarden\n")
    assert script.count("jump acl_internet-only") == 1000


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (
            AclRule("allow", "10.20.0.0/24", "tcp", 80, 80),
            "ip daddr 10.20.0.0/24 tcp dport 80 return",
        ),
        (
            AclRule("deny", "10.0.0.0/8", "udp", 1000, 2000),
            "ip daddr 10.0.0.0/8 udp dport 1000-2000 drop",
        ),
        (AclRule("deny", "0.0.0.0/0"), "meta nfproto ipv4 drop"),
        (AclRule("allow", "fd00::/8", "icmp"), "ip6 daddr fd00::/8 meta l4proto ipv6-icmp return"),
        (AclRule("allow", "10.1.0.0/16", "tcp"), "ip daddr 10.1.0.0/16 meta l4proto tcp return"),
    ],
)
def test_custom_profile_rules(rule: AclRule, text: str) -> None:
    assert firewall.profile_rules(Profile("p", (rule,), "allow")) == [text]
    assert firewall.profile_rules(Profile("p", (rule,), "deny"))[-1] == "drop"


def test_sections_order_and_foreign_sections_slot_in() -> None:
    extra = firewall.Section("dns", (), {"forward": ("tcp dport 853 drop",)})
    rs = firewall.ruleset(NAT, "eth0", PolicyState(), extra=[extra])

    def chain(name: str) -> str:
        return rs.skeleton.split(f"chain {name} {{")[1].split("\n\t}")[0]

    def in_order(text: str, *markers: str) -> bool:
        positions = [text.index(marker) for marker in markers]
        return positions == sorted(positions)

    # One interface-set lookup in the base chain, then the peer rules without one each.
    assert in_order(chain("forward"), "jump from_peer", "jump to_peer", "853 drop", "established")
    assert in_order(chain("from_peer"), "quota name", "jump isolation", "vmap @acl4")
    assert "ww_ifaces" not in chain("from_peer").replace("oifname @ww_ifaces jump isolation", "")
    assert in_order(chain("peer_input"), "@gw_own4 accept", "@gw4 drop", "quota name", "vmap @acl4")
    assert in_order(chain("from_peer"), "jump isolation", "@vpn4 drop", "vmap @acl4")
    # Classified traffic counts for its peer and class after the block rules, both ways.
    assert in_order(chain("from_peer"), "@block4", "update @apps4 { ip saddr . ct mark counter }")
    assert "update @apps6 { ip6 daddr . ct mark counter }" in chain("to_peer")
    assert "set apps4 { type ipv4_addr . mark; size 65535; flags dynamic; }" in rs.skeleton
    # A BitTorrent flow's remote is remembered before the block rules could drop it, and a
    # new flow there is marked before the classifier's queue rule (mangle, -150) sees it.
    assert in_order(chain("from_peer"), "update @bt_peers4", "@block4")
    assert "priority -160;" in rs.skeleton.split("chain recall {")[1].split("\n")[1]
    assert "@bt_peers4 ct mark set" in chain("recall")
    # Published ports count both ways by their target.
    assert "update @expose_count4 { meta l4proto . ip daddr . th dport counter }" in chain(
        "to_peer"
    )


def test_delta_changes_only_the_peer() -> None:
    old = PeerPolicy("wg0", 7, 2, "10.8.0.2", acl="internet-only", cap=Cap(5000, 100))
    new = PeerPolicy("wg0", 7, 2, "10.8.0.2", acl="intranet-only", cap=Cap(9000, 100))
    have, want = layer(old), layer(new)
    seen = {"cap_7_100_5000": Quota("cap_7_100_5000", 5000, 4000)}
    script = firewall.delta_script(have.elements, want.elements, seen, want.quotas)
    assert script.splitlines() == [
        "delete element inet wirewarden acl4 { 10.8.0.2 }",
        "delete element inet wirewarden quota4 { 10.8.0.2 }",
        "delete quota inet wirewarden cap_7_100_5000",
        # A higher cap in the same period keeps the bytes already counted.
        "add quota inet wirewarden cap_7_100_9000 { over 9000 bytes used 4000 bytes }",
        "add element inet wirewarden acl4 { 10.8.0.2 : jump acl_intranet-only }",
        'add element inet wirewarden quota4 { 10.8.0.2 : "cap_7_100_9000" }',
    ]
    assert firewall.delta_script(want.elements, want.elements, {}, {}) == ""


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"cidr": "10.0.0.1/8"}, "host bits"),
        ({"cidr": "10.0.0.0/8", "proto": "tcp", "ports": "0"}, "1-65535"),
        ({"cidr": "10.0.0.0/8", "proto": "icmp", "ports": "80"}, "tcp or udp"),
        ({"cidr": "10.0.0.0/8", "action": "maybe"}, "allow"),
    ],
)
def test_bad_rules(raw: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_rule(raw)


def test_shadowed_rule_is_refused_but_a_narrower_port_rule_first_is_fine() -> None:
    ok = (AclRule("allow", "10.20.0.0/24", "tcp", 80, 80), AclRule("deny", "10.0.0.0/8"))
    check_rules(ok)
    with pytest.raises(PolicyError, match="overlaps"):
        check_rules(tuple(reversed(ok)))


@pytest.mark.parametrize(
    ("now", "day", "start", "end"),
    [
        ("2026-11-23T12:00:00+00:00", 1, "2026-11-01", "2026-12-01"),
        ("2026-11-23T12:00:00+00:00", 28, "2026-10-28", "2026-11-28"),
        ("2026-01-05T00:00:00+00:00", 10, "2025-12-10", "2026-01-10"),
        ("2026-03-15T00:00:00+00:00", 15, "2026-03-15", "2026-04-15"),
    ],
)
def test_cap_period(now: str, day: int, start: str, end: str) -> None:
    tz = ZoneInfo("Europe/Paris")
    got = period_bounds(datetime.fromisoformat(now).astimezone(UTC), day, tz)
    assert [g.date().isoformat() for g in got] == [start, end]
    assert all((g.hour, g.minute) == (0, 0) for g in got)


LIMITED = PeerPolicy("wg0", 7, 4, "10.8.0.4", "fd00::4", rate_down_kbit=20000, rate_up_kbit=5000)


def test_tc_plan_from_nothing_sets_up_both_devices() -> None:
    down, up = tcplan.wanted([LIMITED], "wg0")
    changes = tcplan.plan("wg0", down, up, tcplan.ObservedTc(), leaf="fq_codel")
    ifb = tcplan.ifb_name("wg0")
    assert changes.create_ifb and len(ifb) <= 15
    lines = changes.lines
    assert lines[0] == "qdisc add dev wg0 root handle 1: htb default 0"
    assert (
        "class replace dev wg0 parent 1: classid 1:5 htb rate 20000kbit ceil 20000kbit "
        "quantum 200000"
    ) in lines
    assert "qdisc replace dev wg0 parent 1:5 handle 5: fq_codel" in lines
    assert (
        "filter add dev wg0 parent 1: prio 1 protocol ip handle 100:4:1 u32 ht 100:4: "
        "match ip dst 10.8.0.4/32 flowid 1:5"
    ) in lines
    assert (
        f"filter add dev {ifb} parent 1: prio 2 protocol ipv6 handle 200:4:1 u32 ht 200:4: "
        "match ip6 src fd00::4/128 flowid 1:5"
    ) in lines
    assert any("mirred egress redirect dev " + ifb in line for line in lines)
    assert (
        f"class replace dev {ifb} parent 1: classid 1:5 htb rate 5000kbit ceil 5000kbit "
        "quantum 62500"
    ) in lines


@pytest.mark.parametrize(
    ("peers", "lines"),
    [
        ([LIMITED], []),  # in sync: nothing to do
        (
            [
                PeerPolicy(
                    "wg0", 7, 4, "10.8.0.4", "fd00::4", rate_down_kbit=8000, rate_up_kbit=5000
                )
            ],
            [
                "class replace dev wg0 parent 1: classid 1:5 htb rate 8000kbit ceil 8000kbit "
                "quantum 100000"
            ],
        ),
        ([], ["qdisc del dev wg0 root", "qdisc del dev wg0 ingress"]),
    ],
)
def test_tc_plan_against_what_is_there(peers: list[PeerPolicy], lines: list[str]) -> None:
    have = tcplan.as_observed(*tcplan.wanted([LIMITED], "wg0"))
    down, up = tcplan.wanted(peers, "wg0")
    assert list(tcplan.plan("wg0", down, up, have).lines) == lines


def test_throttled_peer_gets_the_throttle_rate() -> None:
    capped = PeerPolicy("wg0", 7, 4, "10.8.0.4", cap=Cap(10, 1))
    down, up = tcplan.wanted([capped], "wg0", frozenset({7}), throttle_kbit=512)
    assert [c.rate_kbit for c in down.classes.values()] == [512]
    assert [c.rate_kbit for c in up.classes.values()] == [512]


@pytest.mark.parametrize(
    ("rate", "quantum"), [(8, 1600), (10000, 125000), (20000, 200000), (1_000_000, 200000)]
)
def test_class_quantum_stays_in_htb_range(rate: int, quantum: int) -> None:
    assert tcplan.quantum(rate) == quantum


def test_tc_filter_listing_is_parsed_with_bucket_zero() -> None:
    from wirewarden.dataplane.tc import parse_classes, parse_filters

    text = (
        "filter protocol ip pref 1 u32 chain 0 fh 100::12 order 18 key ht 100 bkt 0 "
        "*flowid 1:1101 not_in_hw\n"
        "filter protocol ip pref 1 u32 chain 0 fh 100:4:1 order 1 key ht 100 bkt 4 "
        "*flowid 1:5 not_in_hw\n"
        "filter protocol ip pref 1 u32 chain 0 fh 800::800 order 2048 key ht 800 bkt 0 "
        "link 100: not_in_hw\n"
    )
    assert parse_filters(text) == ({"100:0:12": 0x1101, "100:4:1": 5}, frozenset({4}))
    classes = "class htb 1:a root leaf a: prio 0 rate 10330Kbit ceil 10330Kbit burst 1600b\n"
    classes += "class htb 1:b root prio 0 rate 1Mbit ceil 1Mbit burst 1600b\n"
    assert parse_classes(classes) == {10: 10330, 11: 1000}


def test_tc_plan_for_one_peer_leaves_the_others() -> None:
    other = PeerPolicy("wg0", 8, 9, "10.8.0.9", rate_down_kbit=1000)
    have = tcplan.as_observed(*tcplan.wanted([LIMITED, other], "wg0"))
    changes = tcplan.plan_peer("wg0", other, None, have)
    assert list(changes.lines) == [
        "filter del dev wg0 parent 1: prio 1 protocol ip handle 100:9:1 u32",
        "class del dev wg0 classid 1:a",
    ]


TWO_TENANTS = PolicyState(
    gateways=(
        ("wg0", "10.8.0.1"),
        ("wg0", "fd00::1"),
        ("t-acme", "10.88.0.1"),
        ("t-b", "10.88.1.1"),
    ),
    interfaces=("t-acme", "t-b", "wg0"),
    tenants=(("t-acme",), ("t-b",), ("wg0",)),
)
TENANT_NAT = (
    NatNetwork("wg0", "10.8.0.0/24"),
    NatNetwork("t-acme", "10.88.0.0/24"),
    NatNetwork("t-b", "10.88.1.0/24"),
)


def test_a_tenant_reaches_its_own_gateway_only() -> None:
    """The walls are elements: each interface may reach the gateways of its own tenant."""
    els = firewall.ruleset(TENANT_NAT, "eth0", TWO_TENANTS).layer.elements
    own = {e.key for e in els if e.set == "gw_own4"}
    assert own == {'"wg0" . 10.8.0.1', '"t-acme" . 10.88.0.1', '"t-b" . 10.88.1.1'}
    assert {e.key for e in els if e.set == "gw4"} == {"10.8.0.1", "10.88.0.1", "10.88.1.1"}
    assert {e.key for e in els if e.set == "vpn4"} == {
        "10.8.0.0/24",
        "10.88.0.0/24",
        "10.88.1.0/24",
    }
    # Two interfaces of one tenant see each other's gateways.
    shared = PolicyState(**{**TWO_TENANTS.__dict__, "tenants": (("t-acme", "t-b"), ("wg0",))})
    els = firewall.ruleset(TENANT_NAT, "eth0", shared).layer.elements
    assert '"t-acme" . 10.88.1.1' in {e.key for e in els if e.set == "gw_own4"}


def test_200_tenants_have_the_rules_of_2() -> None:
    """Per-packet cost and the table's rules do not grow with tenants: adding one is a
    handful of element adds, never a rewrite of the others' state."""

    def tenants(n: int) -> firewall.Ruleset:
        names = [f"t-{i}" for i in range(n)]
        nat = tuple(
            NatNetwork(name, f"10.{i // 250}.{i % 250}.0/24") for i, name in enumerate(names)
        )
        gws = tuple((name, f"10.{i // 250}.{i % 250}.1") for i, name in enumerate(names))
        walls = tuple((name,) for name in names)
        return firewall.ruleset(
            nat, "eth0", PolicyState(gateways=gws, interfaces=tuple(names), tenants=walls)
        )

    many = tenants(200)
    assert tenants(2).skeleton == many.skeleton
    added = firewall.delta_script(many.layer.elements, tenants(201).layer.elements, {}, {})
    assert added.splitlines() == [
        "add element inet wirewarden gw4 { 10.0.200.1 }",
        'add element inet wirewarden gw_own4 { "t-200" . 10.0.200.1 }',
        'add element inet wirewarden same_if { "t-200" . "t-200" }',
        "add element inet wirewarden vpn4 { 10.0.200.0/24 }",
        'add element inet wirewarden ww_ifaces { "t-200" }',
    ]


def _tenant_peer(index: int, down: int | None, total: int | None = 10_000) -> PeerPolicy:
    return PeerPolicy(
        "wg0", index, index, f"10.8.0.{index}", rate_down_kbit=down, total_down_kbit=total
    )


def test_a_tenant_total_is_a_parent_its_peers_borrow_from_with_a_catch_all() -> None:
    peers = [_tenant_peer(4, 20_000), _tenant_peer(5, None)]
    down, up = tcplan.wanted(peers, "wg0")
    assert not up.classes  # no upload total, no upload limit
    lines = list(tcplan.plan("wg0", down, up, tcplan.ObservedTc()).lines)
    parent = (
        "class replace dev wg0 parent 1: classid 1:1 htb rate 10000kbit ceil 10000kbit "
        "quantum 125000"
    )
    # A peer's own limit above the total is brought down to it, and borrowed from the parent.
    child = "class replace dev wg0 parent 1:1 classid 1:5 htb rate 10kbit ceil 10000kbit quantum"
    fallback = "class replace dev wg0 parent 1:1 classid 1:fffe htb rate 10kbit ceil 10000kbit"
    catch_all = "filter add dev wg0 parent 1: prio 9 protocol all u32 match u32 0 0 flowid 1:fffe"
    assert parent in lines
    at = {
        prefix: next(i for i, line in enumerate(lines) if line.startswith(prefix))
        for prefix in (parent, child, fallback, catch_all)
    }
    # Parents first, the catch-all once its class exists; no leaf qdisc on the parent.
    assert at[parent] < at[child] and at[parent] < at[fallback] < at[catch_all]
    assert not any("parent 1:1 handle 1:" in line for line in lines)
    # The peer without a limit of its own has no class: the catch-all takes its traffic.
    assert not any("10.8.0.5" in line for line in lines)
    assert tcplan.plan("wg0", down, up, tcplan.as_observed(down, up)).empty


def test_a_total_given_or_lifted_moves_the_classes_it_holds() -> None:
    alone = [_tenant_peer(4, 2000, total=None)]
    have = tcplan.as_observed(*tcplan.wanted(alone, "wg0"))
    down, up = tcplan.wanted([_tenant_peer(4, 2000)], "wg0")
    lines = list(tcplan.plan("wg0", down, up, have).lines)
    # HTB keeps a parent on replace: the class and its filter go, and come back below 1:1.
    assert lines.index(
        "filter del dev wg0 parent 1: prio 1 protocol ip handle 100:4:1 u32"
    ) < lines.index("class del dev wg0 classid 1:5")
    assert any(line.startswith("class replace dev wg0 parent 1:1 classid 1:5 ") for line in lines)
    assert any(
        line.startswith("filter add dev wg0 parent 1: prio 1 protocol ip handle 100:4:1")
        for line in lines
    )
    capped = tcplan.as_observed(down, up)
    down, up = tcplan.wanted(alone, "wg0")
    lifted = list(tcplan.plan("wg0", down, up, capped).lines)
    assert (
        lifted.index("filter del dev wg0 parent 1: prio 9 protocol all")
        < lifted.index("class del dev wg0 classid 1:fffe")
        < lifted.index("class del dev wg0 classid 1:1")
    )
    assert any(line.startswith("class replace dev wg0 parent 1: classid 1:5 ") for line in lifted)


def test_one_peers_change_under_a_total_keeps_the_tenant_s_classes() -> None:
    peers = [_tenant_peer(4, 2000), _tenant_peer(5, 3000)]
    have = tcplan.as_observed(*tcplan.wanted(peers, "wg0"))
    gone = tcplan.plan_peer("wg0", peers[1], None, have)
    assert gone.lines == (
        "filter del dev wg0 parent 1: prio 1 protocol ip handle 100:5:1 u32",
        "class del dev wg0 classid 1:6",
    )
    changed = _tenant_peer(5, 4000)
    lines = tcplan.plan_peer("wg0", peers[1], changed, have).lines
    assert lines == (
        "class replace dev wg0 parent 1:1 classid 1:6 htb rate 10kbit ceil 4000kbit quantum 50000",
    )

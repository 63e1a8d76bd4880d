"""The pure planner: what diff(desired, observed) asks of the data plane, case by case."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wirewarden.domain import firewall
from wirewarden.domain.render import nft_ruleset
from wirewarden.domain.state import (
    DesiredState,
    InterfaceState,
    NatNetwork,
    ObservedInterface,
    ObservedLink,
    ObservedState,
    PeerState,
)
from wirewarden.domain.tcplan import ifb_name
from wirewarden.reconciler.actions import (
    Action,
    ApplyFirewall,
    ConfigureDevice,
    ConfigureLink,
    CreateInterface,
    EnableForwarding,
    RemoveFirewall,
    RemoveIfb,
    RemoveInterface,
    RemovePeers,
    SetPeers,
)
from wirewarden.reconciler.plan import diff

KEY = "c2VydmVyLXByaXZhdGUta2V5LTMyLWJ5dGVzLWxvbmc="
OTHER_KEY = "b3RoZXItcHJpdmF0ZS1rZXktMzItYnl0ZXMtbG9uZyE="
A = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="
B = "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI="
Z = "enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6eno="
PSK = "cHJlc2hhcmVkLWtleS0zMi1ieXRlcy1sb25nLW9rISE="

PEER_A = PeerState(A, ("10.8.0.2/32", "fd00:8::2/128"), PSK)
PEER_B = PeerState(B, ("10.8.0.3/32",))
WG0 = InterfaceState(
    name="wg0",
    private_key=KEY,
    listen_port=51820,
    addresses=("10.8.0.1/24", "fd00:8::1/64"),
    mtu=1420,
    peers={A: PEER_A, B: PEER_B},
)
NAT = (NatNetwork("wg0", "10.8.0.0/24"), NatNetwork("wg0", "fd00:8::/64"))
SCRIPT, DIGEST = nft_ruleset(NAT, "eth0")
# The whole table, with wg0 and its networks as elements of our sets.
APPLY = ApplyFirewall(SCRIPT, DIGEST, firewall.ruleset(NAT, "eth0").layer.elements)


def desired(*ifaces: InterfaceState, managed: tuple[str, ...] = ()) -> DesiredState:
    names = frozenset(i.name for i in ifaces) | frozenset(managed)
    nat = NAT if ifaces else ()
    return DesiredState({i.name: i for i in ifaces}, names, nat, "eth0")


def in_sync(iface: InterfaceState = WG0) -> ObservedInterface:
    """What the kernel shows once `iface` is applied."""
    link = ObservedLink(iface.name, True, iface.mtu, (*iface.addresses, "fe80::1/64"))
    return ObservedInterface(link, iface.private_key, iface.listen_port, dict(iface.peers))


def observed(*ifaces: ObservedInterface, digest: str | None = DIGEST) -> ObservedState:
    return ObservedState({i.link.name: i for i in ifaces}, digest, True)


def with_link(**changes: object) -> ObservedInterface:
    have = in_sync()
    return replace(have, link=replace(have.link, **changes))  # type: ignore[arg-type]


def with_peers(*peers: PeerState) -> ObservedInterface:
    return replace(in_sync(), peers={p.public_key: p for p in peers})


def test_empty_kernel_gets_everything_in_order() -> None:
    actions = diff(desired(WG0), ObservedState({}, None, False))
    wg0 = [a for a in actions if getattr(a, "name", None) == "wg0"]
    assert wg0 == [
        CreateInterface("wg0"),
        ConfigureDevice("wg0", KEY, 51820),
        ConfigureLink("wg0", 1420, ("10.8.0.1/24", "fd00:8::1/64"), (), True),
        SetPeers("wg0", (PEER_A, PEER_B)),
    ]
    assert APPLY in actions
    assert EnableForwarding() in actions
    assert len(actions) == 6


def test_empty_kernel_and_nothing_desired_does_nothing() -> None:
    assert diff(desired(), ObservedState({}, None, False)) == []


ZOMBIE = PeerState(Z, ("10.8.0.99/32",))
CASES: list[tuple[str, DesiredState, ObservedState, list[Action]]] = [
    ("in sync", desired(WG0), observed(in_sync()), []),
    (
        "zombie peer",
        desired(WG0),
        observed(with_peers(PEER_A, PEER_B, ZOMBIE)),
        [RemovePeers("wg0", (Z,))],
    ),
    (
        "missing peer",
        desired(WG0),
        observed(with_peers(PEER_A)),
        [SetPeers("wg0", (PEER_B,))],
    ),
    (
        "changed allowed ips",
        desired(WG0),
        observed(with_peers(PEER_A, replace(PEER_B, allowed_ips=("10.8.0.4/32",)))),
        [SetPeers("wg0", (PEER_B,))],
    ),
    (
        "extra allowed ip in the kernel",
        desired(WG0),
        observed(with_peers(PEER_A, replace(PEER_B, allowed_ips=("10.8.0.3/32", "10.1.0.0/16")))),
        [SetPeers("wg0", (PEER_B,))],
    ),
    (
        "changed preshared key",
        desired(WG0),
        observed(with_peers(replace(PEER_A, preshared_key=None), PEER_B)),
        [SetPeers("wg0", (PEER_A,))],
    ),
    (
        "same allowed ips in another order and spelling",
        desired(WG0),
        observed(
            with_peers(
                replace(PEER_A, allowed_ips=("fd00:0008:0::2/128", "10.8.0.2/32")),
                replace(PEER_B, preshared_key="", persistent_keepalive=0),
            )
        ),
        [],
    ),
    (
        "zombie and missing peer together",
        desired(WG0),
        observed(with_peers(PEER_A, ZOMBIE)),
        [RemovePeers("wg0", (Z,)), SetPeers("wg0", (PEER_B,))],
    ),
    (
        "disabled interface still in the kernel",
        desired(managed=("wg0",)),
        observed(in_sync()),
        [RemoveInterface("wg0"), RemoveFirewall()],
    ),
    (
        "disabled interface already gone, and our table with it",
        desired(managed=("wg0",)),
        observed(digest=None),
        [],
    ),
    (
        "wrong listen port",
        desired(WG0),
        observed(replace(in_sync(), listen_port=51999)),
        [ConfigureDevice("wg0", KEY, 51820)],
    ),
    (
        "wrong private key",
        desired(WG0),
        observed(replace(in_sync(), private_key=OTHER_KEY)),
        [ConfigureDevice("wg0", KEY, 51820)],
    ),
    (
        "device lost its settings",
        desired(WG0),
        observed(replace(in_sync(), private_key=None, listen_port=None)),
        [ConfigureDevice("wg0", KEY, 51820)],
    ),
    (
        "link down",
        desired(WG0),
        observed(with_link(up=False)),
        [ConfigureLink("wg0", None, (), (), True)],
    ),
    (
        "wrong mtu",
        desired(WG0),
        observed(with_link(mtu=1500)),
        [ConfigureLink("wg0", 1420, (), (), False)],
    ),
    (
        "extra address removed, link-local kept",
        desired(WG0),
        observed(with_link(addresses=(*WG0.addresses, "10.99.0.1/24", "fe80::abcd/64"))),
        [ConfigureLink("wg0", None, (), ("10.99.0.1/24",), False)],
    ),
    (
        "missing address added",
        desired(WG0),
        observed(with_link(addresses=("10.8.0.1/24", "fe80::1/64"))),
        [ConfigureLink("wg0", None, ("fd00:8::1/64",), (), False)],
    ),
    (
        "address with another prefix is replaced",
        desired(WG0),
        observed(with_link(addresses=("10.8.0.1/16", "fd00:8::1/64"))),
        [ConfigureLink("wg0", None, ("10.8.0.1/24",), ("10.8.0.1/16",), False)],
    ),
    (
        "a link-local address alone is never removed",
        desired(replace(WG0, addresses=())),
        observed(with_link(addresses=("fe80::1/64",))),
        [],
    ),
    (
        "firewall digest differs",
        desired(WG0),
        observed(in_sync(), digest="0123456789abcdef"),
        [APPLY],
    ),
    (
        "no firewall at all",
        desired(WG0),
        observed(in_sync(), digest=None),
        [APPLY],
    ),
    (
        "forwarding off",
        desired(WG0),
        ObservedState({"wg0": in_sync()}, DIGEST, False),
        [EnableForwarding()],
    ),
    (
        "no interface left: our table goes, not an empty one in its place",
        desired(),
        observed(digest="0123456789abcdef"),
        [RemoveFirewall()],
    ),
    (
        "an IFB left by a deleted interface goes",
        desired(managed=("wg0",)),
        replace(observed(digest=None), ifbs=frozenset({ifb_name("wg0")})),
        [RemoveIfb(ifb_name("wg0"))],
    ),
    (
        "an interface's IFB stays while the interface is wanted",
        desired(WG0),
        replace(observed(in_sync()), ifbs=frozenset({ifb_name("wg0")}), tc={}),
        [],
    ),
]


@pytest.mark.parametrize(
    ("want", "have", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_diff(want: DesiredState, have: ObservedState, expected: list[Action]) -> None:
    assert diff(want, have) == expected


def test_one_interface_missing_does_not_touch_the_other() -> None:
    wg1 = replace(WG0, name="wg1", listen_port=51821, addresses=("10.9.0.1/24",), peers={})
    want = replace(
        desired(WG0, wg1), nat=(*NAT, NatNetwork("wg1", "10.9.0.0/24")), managed={"wg0", "wg1"}
    )
    _, digest = nft_ruleset(want.nat, "eth0")  # the table already matches
    actions = diff(want, ObservedState({"wg0": in_sync()}, digest, True))
    assert actions == [
        CreateInterface("wg1"),
        ConfigureDevice("wg1", KEY, 51821),
        ConfigureLink("wg1", 1420, ("10.9.0.1/24",), (), True),
    ]


def test_diff_is_pure() -> None:
    want, have = desired(WG0), observed(with_peers(PEER_A, ZOMBIE))
    before = (repr(want), repr(have))
    assert diff(want, have) == diff(want, have)
    assert (repr(want), repr(have)) == before

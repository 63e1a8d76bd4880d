"""The fleet's state document and messages: round trips, deltas, refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from wirewarden.domain import statediff
from wirewarden.domain.dnsstate import Client, DnsDirectory, DnsGuard, PolicySpec
from wirewarden.domain.exposure import Forward
from wirewarden.domain.policy import AclRule, Cap, PeerPolicy, PolicyState, Profile
from wirewarden.domain.state import DesiredState, InterfaceState, NatNetwork, PeerState
from wirewarden.domain.vhost import NodeNames, Route
from wirewarden.fleet import protocol
from wirewarden.fleet.protocol import NodeState, ProtocolError


def _peer(i: int) -> tuple[PeerState, PeerPolicy]:
    key = f"{i:043d}="
    address = f"10.8.{i // 250}.{i % 250 + 2}"
    state = PeerState(key, (f"{address}/32",), preshared_key=None, persistent_keepalive=25)
    policy = PeerPolicy(
        "wg0",
        i,
        i,
        address,
        rate_down_kbit=1000 if i % 2 else None,
        cap=Cap(10**9, 1_700_000_000) if i % 3 == 0 else None,
    )
    return state, policy


def _state(n: int = 50, uplink: str | None = "eth0") -> NodeState:
    peers = [_peer(i) for i in range(1, n + 1)]
    iface = InterfaceState(
        "wg0",
        "k" * 43 + "=",
        51820,
        ("10.8.0.1/24", "fd00::1/64"),
        1420,
        {s.public_key: s for s, _ in peers},
    )
    policy = PolicyState(
        peers=tuple(p for _, p in peers),
        profiles=(Profile("lan", (AclRule("allow", "192.168.1.0/24", "tcp", 22, 22),)),),
        gateways=(("wg0", "10.8.0.1"),),
        interfaces=("wg0",),
        tenants=(("wg0",),),
    )
    desired = DesiredState(
        {"wg0": iface},
        frozenset({"wg0", "wg1", "t-acme"}),
        (NatNetwork("wg0", "10.8.0.0/24"),),
        uplink,
        revision=7,
        policy=policy,
        dns_guard=DnsGuard({"wg0": ("10.8.0.1",)}),
        forwards=(Forward("tcp", 8080, "10.8.0.2", 80),),
    )
    dns = DnsDirectory(
        7,
        ("10.8.0.1",),
        ("10.8.0.0/24",),
        {"10.8.0.2": Client(1, "p1", "wg0", "default")},
        {"default": PolicySpec("default", deny=("ads.example",))},
    )
    return NodeState(desired, dns)


def test_a_state_survives_its_document() -> None:
    for state in (_state(), _state(uplink=None), NodeState(_state().desired, None)):
        doc = json.loads(json.dumps(protocol.to_document(state)))
        assert protocol.from_document(doc) == state


def test_equal_states_have_equal_digests_whatever_their_build_order() -> None:
    state = _state()
    reordered = replace(
        state,
        desired=replace(
            state.desired,
            managed=frozenset(reversed(sorted(state.desired.managed))),
            policy=replace(state.desired.policy, peers=state.desired.policy.peers[::-1]),
        ),
    )
    a, b = protocol.to_document(state), protocol.to_document(reordered)
    assert statediff.digest(a) == statediff.digest(b)


def test_one_peer_changed_among_many_is_a_patch_naming_that_peer() -> None:
    before = _state(2000)
    _, policy = _peer(1500)
    changed_policy = replace(policy, rate_down_kbit=5000)
    peers = tuple(changed_policy if p.peer_id == 1500 else p for p in before.desired.policy.peers)
    after = replace(
        before, desired=replace(before.desired, policy=replace(before.desired.policy, peers=peers))
    )
    old, new = protocol.to_document(before), protocol.to_document(after)
    change = statediff.diff(old, new)
    assert change == {"desired": {"policy": {"peers": {"1500": {"rate_down_kbit": 5000}}}}}
    assert statediff.size(change) == 1
    landed = statediff.patch(json.loads(json.dumps(old)), json.loads(json.dumps(change)))
    assert statediff.digest(landed) == statediff.digest(new)
    assert protocol.from_document(landed) == after


def test_a_peer_removed_and_one_added() -> None:
    before = _state(10)
    iface = before.desired.interfaces["wg0"]
    gone = _peer(3)[0].public_key
    new_state, new_policy = _peer(11)
    peers = {k: v for k, v in iface.peers.items() if k != gone} | {new_state.public_key: new_state}
    policies = (*(p for p in before.desired.policy.peers if p.peer_id != 3), new_policy)
    after = replace(
        before,
        desired=replace(
            before.desired,
            interfaces={"wg0": replace(iface, peers=peers)},
            policy=replace(before.desired.policy, peers=policies),
        ),
    )
    old, new = protocol.to_document(before), protocol.to_document(after)
    change = statediff.diff(old, new)
    assert change["desired"]["interfaces"]["wg0"]["peers"][gone] is None
    assert change["desired"]["policy"]["peers"]["3"] is None
    assert protocol.from_document(statediff.patch(old, change)) == after


def test_diff_of_equal_documents_is_empty_and_patch_leaves_its_input_alone() -> None:
    doc = protocol.to_document(_state())
    assert statediff.diff(doc, protocol.to_document(_state())) == {}
    copy = json.loads(json.dumps(doc))
    statediff.patch(doc, {"desired": {"uplink": "eth1", "nat": None}})
    assert doc == copy


def test_merge_patch_follows_rfc_7396_examples() -> None:
    # RFC 7396 appendix A, the cases without a null in the target document.
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for doc, change, result in cases:
        assert statediff.patch(doc, change) == result
        if None not in doc.values():
            assert statediff.patch(doc, statediff.diff(doc, result)) == result


def test_a_document_never_holds_null() -> None:
    with pytest.raises(statediff.PatchError, match="uplink"):
        statediff.diff({}, {"uplink": None})


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"desired": {}},
        {"desired": {"policy": {"peers": []}}},
        {"desired": {"policy": {"peers": {"1": "x"}}}},
        {"desired": {"policy": {"peers": {}}, "interfaces": 3}},
    ],
)
def test_garbage_documents_are_refused_with_a_reason(doc: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        protocol.from_document(doc)


def test_a_document_with_a_bad_value_names_where() -> None:
    doc = protocol.to_document(_state())
    doc["desired"]["interfaces"]["wg0"]["listen_port"] = "many"
    with pytest.raises(ProtocolError, match="listen_port"):
        protocol.from_document(doc)


def test_messages_round_trip_and_refuse_unknown_fields() -> None:
    hello = protocol.Hello(node="fra1", version="0.3.0", revision=4, hash="ab" * 32)
    assert protocol.decode_from_agent(protocol.encode(hello)) == hello
    snap, _doc, digest = protocol.snapshot(_state(), 9)
    back = protocol.decode_from_server(protocol.encode(snap))
    assert isinstance(back, protocol.Snapshot)
    assert back.revision == 9 and back.hash == digest == statediff.digest(back.state)
    assert protocol.from_document(back.state) == _state()
    with pytest.raises(ProtocolError, match="peer_ip"):
        protocol.decode_from_agent(
            json.dumps({"type": "ack", "revision": 1, "hash": "", "in_sync": True, "peer_ip": 1})
        )
    with pytest.raises(ProtocolError, match="revision"):
        protocol.decode_from_agent(
            json.dumps({"type": "ack", "revision": -1, "hash": "", "in_sync": True})
        )
    with pytest.raises(ProtocolError):
        protocol.decode_from_agent(
            json.dumps({"type": "snapshot", "revision": 1, "hash": "", "state": {}})
        )
    with pytest.raises(ProtocolError):
        protocol.decode_from_server(b"\xff not json")


def test_advance_keeps_the_digest_of_every_patch() -> None:
    before = _state(300)
    doc = protocol.to_document(before)
    digest = statediff.digest(doc)
    changes: list[dict[str, object]] = [
        {"desired": {"policy": {"peers": {"17": {"rate_down_kbit": 5, "cap": None}}}}},
        {"desired": {"policy": {"peers": {"18": None, "9999": {"peer_id": 9999}}}}},
        {"desired": {"interfaces": {"wg0": {"listen_port": 51821}}, "uplink": None}},
        {"desired": {"interfaces": {"wg1": {"name": "wg1", "peers": {}}}}},
        {"desired": {"interfaces": None}},
        {"dns": None},
        {"desired": {"policy": {"peers": {}}}},
        {"desired": {"policy": "flat now"}},
        {"desired": {"policy": {"peers": {"1": {"peer_id": 1}}}}},
        {},
    ]
    for change in changes:
        doc, digest = statediff.advance(doc, digest, change)
        assert digest == statediff.digest(doc), change


def test_digest_tells_apart_what_json_shapes_could_confuse() -> None:
    variants = [
        {},
        {"a": {}},
        {"a": {"b": {}}},
        {"a": {"b": 1}},
        {"a": {"b": "1"}},
        {"a": [{"b": 1}]},
        {"a.b": 1},
        {"a": {"b": {"c": 1}}},
        {"a": {"b": {"c": 1}, "d": 2}},
    ]
    digests = {statediff.digest(v) for v in variants}
    assert len(digests) == len(variants)


def _changed(old: NodeState, new: NodeState) -> tuple[NodeState, protocol.PeerChanges] | None:
    before, after = protocol.to_document(old), protocol.to_document(new)
    return protocol.advance_state(old, after, statediff.diff(before, after))


def test_a_peers_only_change_builds_the_same_state_as_the_whole_document() -> None:
    old = _state(60)
    peers = old.desired.policy.peers
    iface = old.desired.interfaces["wg0"]
    gone_key = next(iter(iface.peers))
    added_state, added_policy = _peer(61)
    changed = replace(peers[5], rate_down_kbit=777)
    new_iface = replace(
        iface,
        peers={
            **{k: v for k, v in iface.peers.items() if k != gone_key},
            added_state.public_key: added_state,
        },
    )
    kept = (changed if p.peer_id == changed.peer_id else p for p in peers if p.peer_id != 1)
    new_policies = (*kept, added_policy)
    assert old.dns is not None
    new = NodeState(
        replace(
            old.desired,
            revision=8,
            interfaces={"wg0": new_iface},
            policy=replace(old.desired.policy, peers=new_policies),
        ),
        replace(old.dns, revision=8),
    )
    # The control plane's patch from the states equals the documents' diff.
    whole = statediff.diff(protocol.to_document(old), protocol.to_document(new))
    assert protocol.state_patch(old, new) == whole
    found = _changed(old, new)
    assert found is not None
    state, changes = found
    assert state == protocol.from_document(protocol.to_document(new))
    assert {(k, s is None) for _, k, s in changes.peers} == {
        (gone_key, True),
        (added_state.public_key, False),
    }
    assert {(o and o.peer_id, n and n.peer_id) for o, n in changes.policies} == {
        (1, None),
        (6, 6),
        (None, 61),
    }


def test_a_change_beyond_peers_asks_for_the_whole_document() -> None:
    old = _state(5)
    renumbered = replace(old, desired=replace(old.desired, nat=()))
    assert _changed(old, renumbered) is None
    assert protocol.state_patch(old, renumbered) is None
    assert old.dns is not None
    policies = replace(old, dns=replace(old.dns, policies={}))
    assert _changed(old, policies) is None
    assert protocol.state_patch(old, policies) is None
    iface = old.desired.interfaces["wg0"]
    moved = replace(old.desired, interfaces={"wg0": replace(iface, listen_port=51999)})
    assert _changed(old, replace(old, desired=moved)) is None
    assert protocol.state_patch(old, replace(old, desired=moved)) is None
    # A new DNS client (a peer's address) is part of a peers-only patch.
    clients = {**old.dns.clients, "10.8.0.9": Client(9, "p9", "wg0", "default")}
    more = replace(old, dns=replace(old.dns, clients=clients))
    whole = statediff.diff(protocol.to_document(old), protocol.to_document(more))
    assert (
        protocol.state_patch(old, more)
        == whole
        == {
            "dns": {
                "clients": {
                    "10.8.0.9": {
                        "peer_id": 9,
                        "peer": "p9",
                        "interface": "wg0",
                        "policy": "default",
                    }
                }
            }
        }
    )


def test_a_published_port_is_a_small_patch_the_agent_applies_without_a_whole_pass() -> None:
    """A mapping registered through a node's agent: the patch carries the forwards, and
    the agent's state names them before and after (it puts them into the kernel alone)."""
    old = _state(5)
    held = old.desired.forwards
    forward = Forward("tcp", 8080, "10.8.0.3", 3000, snat=True)
    new = replace(old, desired=replace(old.desired, revision=9, forwards=(*held, forward)))
    whole = statediff.diff(protocol.to_document(old), protocol.to_document(new))
    assert protocol.state_patch(old, new) == whole
    assert set(whole["desired"]) == {"revision", "forwards"}
    found = _changed(old, new)
    assert found is not None
    state, changes = found
    assert state == protocol.from_document(protocol.to_document(new))
    assert changes.forwards == (held, (*held, forward)) and changes.peers == ()
    # And back: removed.
    found = _changed(new, old)
    assert found is not None and found[1].forwards == ((*held, forward), held)


def test_a_name_is_a_small_patch_that_touches_no_kernel_state() -> None:
    """A name published by a node's peer: the patch carries the node's names alone, the
    agent's state holds them (its front serves them) and nothing goes to the kernel."""
    old = replace(_state(5), desired=replace(_state(5).desired, names=NodeNames(80, 443)))
    route = Route(4, "10.8.0.2", 3000, False)
    names = NodeNames(80, 443, (("blog.acme.names.test", route),))
    new = replace(old, desired=replace(old.desired, revision=9, names=names))
    whole = statediff.diff(protocol.to_document(old), protocol.to_document(new))
    assert protocol.state_patch(old, new) == whole
    assert set(whole["desired"]) == {"revision", "names"}
    found = _changed(old, new)
    assert found is not None
    state, changes = found
    assert state == protocol.from_document(protocol.to_document(new))
    assert state.desired.names is not None
    assert state.desired.names.table() == {"blog.acme.names.test": route}
    assert changes.peers == () and changes.policies == () and changes.forwards is None
    # And gone, and a state of a control plane that publishes no names.
    assert _changed(new, old) is not None
    assert protocol.from_document(protocol.to_document(_state())).desired.names is None

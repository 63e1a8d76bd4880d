"""The agent endpoint on PostgreSQL (a fleet's database), driven as an agent would: the
one-time join token, the node credential and its walls, the WebSocket's snapshot and
deltas, acks, heartbeats and reports, the long-poll fallback, revocation; the tunnel API
of a node's peers, relayed by its agent (written as the requests of the agent, of another
node's agent that claims a peer not its own, and of anyone without a credential: the
credential decides which node's peers a request acts for, never the headers)."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from starlette.websockets import WebSocketDisconnect

from tests.api.conftest import build_fast, stored_bytes
from wirewarden.bootstrap import Container
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.classify.steering import mark_of
from wirewarden.domain.statediff import digest, patch
from wirewarden.domain.vhost import Route
from wirewarden.fleet.protocol import (
    GATEWAY_HEADER,
    REVISION_HEADER,
    SOURCE_HEADER,
    Ack,
    Heartbeat,
    Hello,
    Report,
    decode_from_server,
    encode,
)
from wirewarden.services.context import SYSTEM
from wirewarden.store.fleet import Leadership
from wirewarden.store.tables import DnsQuery, ExposedPort, NodeJoinToken, NodeStatus, Peer
from wirewarden.web.app import create_app

API = "/api/v1"
BAD_JOIN = "invalid, used or expired join token"


@pytest.fixture(autouse=True)
def deadline() -> Iterator[None]:
    """A websocket receive that never gets its message fails the test, not the run."""

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError("no answer from the agent endpoint")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def fleet(container: Container, database_url: str | None) -> Container:
    if database_url is None:
        pytest.skip("a fleet runs on PostgreSQL (SQLite's refusal: test_nodes_api.py)")
    return container


@pytest.fixture
def tc(fleet: Container) -> Iterator[TestClient]:
    """One client (one event loop) for the admin's calls and the agent's."""
    with TestClient(create_app(fleet, run_loop=False)) as test_client:
        yield test_client


@pytest.fixture
def admin(fleet: Container) -> dict[str, str]:
    token = fleet.tokens.create("admin", ["read", "write", "admin"], SYSTEM)
    return {"Authorization": f"Bearer {token}"}


def _add_node(tc: TestClient, admin: dict[str, str], name: str, **place: Any) -> str:
    made = tc.post(f"{API}/nodes", json={"name": name, **place}, headers=admin)
    assert made.status_code == 201, made.text
    token: str = made.json()["join_token"]
    return token


def _enrol(tc: TestClient, join_token: str) -> str:
    answer = tc.post(f"{API}/agent/enrol", json={"join_token": join_token, "version": "t"})
    assert answer.status_code == 200, answer.text
    credential: str = answer.json()["credential"]
    assert credential.startswith("wwn_")
    return credential


def _node(tc: TestClient, admin: dict[str, str], name: str) -> dict[str, Any]:
    found: dict[str, Any] = tc.get(f"{API}/nodes/{name}", headers=admin).json()
    return found


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _interface(tc: TestClient, admin: dict[str, str], name: str, node: str, net: str) -> None:
    body = {"name": name, "node": node, "address": f"10.{net}.0.1/24", "listen_port": 51900}
    made = tc.post(f"{API}/interfaces", json=body, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["node"] == node


def test_join_tokens_are_single_use_expire_and_say_nothing(
    tc: TestClient, admin: dict[str, str], fleet: Container
) -> None:
    token = _add_node(tc, admin, "n1", region="eu")
    assert _enrol(tc, token)
    again = tc.post(f"{API}/agent/enrol", json={"join_token": token})
    assert (again.status_code, again.json()["detail"]) == (401, BAD_JOIN)
    unknown = tc.post(f"{API}/agent/enrol", json={"join_token": "wwj_" + "x" * 43})
    assert (unknown.status_code, unknown.json()["detail"]) == (401, BAD_JOIN)
    late = tc.post(f"{API}/nodes/n1/join-token", headers=admin).json()["join_token"]
    with fleet.engine.begin() as conn:
        conn.execute(
            update(NodeJoinToken)
            .where(NodeJoinToken.used_at.is_(None))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = tc.post(f"{API}/agent/enrol", json={"join_token": late})
    assert (expired.status_code, expired.json()["detail"]) == (401, BAD_JOIN)
    # Neither the token nor the credential is stored as itself.
    credential = _enrol(
        tc, tc.post(f"{API}/nodes/n1/join-token", headers=admin).json()["join_token"]
    )
    stored = stored_bytes(fleet)
    assert credential.encode() not in stored and late.encode() not in stored
    assert token.encode() not in stored


def test_hello_gets_current_when_it_holds_the_state_else_a_snapshot(
    tc: TestClient, admin: dict[str, str], fleet: Container
) -> None:
    credential = _enrol(tc, _add_node(tc, admin, "n1"))
    _interface(tc, admin, "wgn1", "n1", "50")
    with tc.websocket_connect(f"{API}/agent/ws", headers=_bearer(credential)) as ws:
        ws.send_text(encode(Hello(node="n1", version="t")))
        first = decode_from_server(ws.receive_text())
        assert first.type == "snapshot"
        # The agent restarts with what it holds: nothing to send again.
        ws.send_text(
            encode(Hello(node="n1", version="t", revision=first.revision, hash=first.hash))
        )
        assert decode_from_server(ws.receive_text()).type == "current"
        # A digest that does not match (drift, a lost delta): a whole snapshot again.
        ws.send_text(encode(Hello(node="n1", version="t", revision=first.revision, hash="0" * 64)))
        again = decode_from_server(ws.receive_text())
        assert again.type == "snapshot" and again.hash == first.hash
        ws.send_text(encode(Hello(node="n1", version="t", protocol=2)))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4400


def test_snapshot_then_deltas_that_digest_right_and_never_touch_this_kernel(
    tc: TestClient, admin: dict[str, str], fleet: Container, dataplane: FakeDataplane
) -> None:
    credential = _enrol(tc, _add_node(tc, admin, "n1", region="eu"))
    _interface(tc, admin, "wgn1", "n1", "50")
    with tc.websocket_connect(f"{API}/agent/ws", headers=_bearer(credential)) as ws:
        ws.send_text(encode(Hello(node="n1", version="t")))
        first = decode_from_server(ws.receive_text())
        assert first.type == "snapshot"
        doc = first.state
        assert digest(doc) == first.hash
        assert "wgn1" in doc["desired"]["interfaces"]
        made = tc.post(f"{API}/interfaces/wgn1/peers", json={"name": "phone"}, headers=admin)
        assert made.status_code == 201, made.text
        key = made.json()["public_key"]
        step = decode_from_server(ws.receive_text())
        assert step.type == "delta" and step.base == first.revision
        assert step.revision > first.revision
        doc = patch(doc, step.patch)
        assert digest(doc) == step.hash
        assert key in doc["desired"]["interfaces"]["wgn1"]["peers"]
        # Committed for the node, never applied to this host's kernel.
        assert "wgn1" not in dataplane.devices
        ws.send_text(encode(Ack(revision=step.revision, hash=step.hash, in_sync=True)))
        before = _node(tc, admin, "n1")["revision"]
        beat = Heartbeat(
            peers=1, online_peers=1, rx_bps=10, tx_bps=20, cpu_percent=3.5, version="t", uptime_s=9
        )
        ws.send_text(encode(beat))
        shown = _wait(lambda: _node(tc, admin, "n1"), lambda n: n["status"] == "online")
    assert shown["applied_revision"] == step.revision and shown["hash_matches"] is True
    assert shown["in_sync"] is True and shown["online_peers"] == 1
    assert shown["revision"] == before  # a heartbeat bumps no revision
    assert shown["peers"] == 1 and shown["load"] == pytest.approx(1 / 1000)
    iface = tc.get(f"{API}/interfaces/wgn1", headers=admin).json()
    assert (iface["node"], iface["status"]) == ("n1", "applied")
    peer = tc.get(f"{API}/interfaces/wgn1/peers", headers=admin).json()["items"][0]
    assert (peer["node"], peer["interface"]) == ("n1", "wgn1")


def _wait(read: Any, ok: Any, seconds: float = 10.0) -> Any:
    end = time.monotonic() + seconds
    while True:
        value = read()
        if ok(value) or time.monotonic() > end:
            return value
        time.sleep(0.05)


def test_a_credential_reads_and_reports_only_its_own_node(
    tc: TestClient, admin: dict[str, str], fleet: Container
) -> None:
    one = _enrol(tc, _add_node(tc, admin, "n1"))
    _enrol(tc, _add_node(tc, admin, "n2"))
    _interface(tc, admin, "wgn1", "n1", "50")
    _interface(tc, admin, "wgn2", "n2", "51")
    theirs = tc.post(f"{API}/interfaces/wgn2/peers", json={"name": "theirs"}, headers=admin).json()
    mine = tc.post(f"{API}/interfaces/wgn1/peers", json={"name": "mine"}, headers=admin).json()
    # Its state is its own node's, whatever the hello claims.
    with tc.websocket_connect(f"{API}/agent/ws", headers=_bearer(one)) as ws:
        ws.send_text(encode(Hello(node="n2", version="t")))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4400
    state = decode_from_server(tc.get(f"{API}/agent/state?wait=0", headers=_bearer(one)).text)
    assert state.type == "snapshot"
    assert set(state.state["desired"]["interfaces"]) == {"wgn1"}
    # A report naming the other node's peer: its rows are dropped, its own kept.
    now = int(time.time())
    sample = {
        "t": now,
        "interface": "wgn2",
        "public_key": theirs["public_key"],
        "rx": 10**9,
        "tx": 5,
    }
    own = {"t": now, "interface": "wgn1", "public_key": mine["public_key"], "rx": 700, "tx": 300}
    dns = {"at": time.time(), "client": "10.51.0.2", "policy": "default", "name": "x.test."}
    dns |= {"qtype": 1, "status": "allowed", "rcode": 0, "count": 1}
    tls = mark_of("tls")
    their_ip, my_ip = (p["address"].split("/")[0] for p in (theirs, mine))
    apps = [
        {"t": now, "address": their_ip, "mark": tls, "bytes": 10**9, "packets": 9},
        {"t": now, "address": my_ip, "mark": tls, "bytes": 4_000, "packets": 4, "flows": 2},
        {"t": now, "address": my_ip, "mark": 1, "bytes": 7, "packets": 7},  # no class
        {"t": now, "address": my_ip, "mark": tls, "bytes": -1, "packets": 0},  # garbage
    ]
    server = "198.51.100.7"
    names = [
        {"t": now, "a": my_ip, "b": server, "app": "tls", "name": "shop.test", "flows": 2},
        {"t": now, "a": their_ip, "b": server, "app": "tls", "name": "theirs.test", "flows": 1},
        {"t": now, "a": my_ip, "b": server, "app": "tls", "name": "<img src=x>", "flows": 1},
        {"t": now, "a": my_ip, "b": server, "app": "ssh", "name": "ssh.test", "flows": 1},
    ]
    report = Report(
        seq=1,
        samples=[sample, own],
        dns_log=[{**dns, "peer_id": theirs["id"]}, {**dns, "peer_id": mine["id"]}],
        quotas={f"cap_{theirs['id']}_0_100": 99, f"cap_{mine['id']}_0_100": 42},
        apps=apps,
        names=names,
    )
    answer = tc.post(f"{API}/agent/messages", content=encode(report), headers=_bearer(one))
    assert answer.status_code == 200 and answer.json() == {"type": "report_ack", "seq": 1}
    assert (
        fleet.traffic.totals(theirs["id"]) == (0, 0) if hasattr(fleet.traffic, "totals") else True
    )
    with fleet.engine.connect() as conn:
        logged = conn.execute(select(DnsQuery.peer_id, DnsQuery.peer)).all()
        used = dict(conn.execute(select(Peer.id, Peer.cap_used_bytes)).all())
    assert logged == [(mine["id"], "mine")]
    assert used[theirs["id"]] == 0 and used[mine["id"]] == 42
    usage_theirs = tc.get(f"{API}/peers/{theirs['id']}/usage", headers=admin).json()
    usage_mine = tc.get(f"{API}/peers/{mine['id']}/usage", headers=admin).json()
    assert usage_theirs["rx_bytes"] + usage_theirs["tx_bytes"] == 0
    assert usage_mine["rx_bytes"] + usage_mine["tx_bytes"] == 1000
    # Its peer's classified traffic lands in the store; the other node's peer's does not.
    since = {"since": "2020-01-01T00:00:00Z"}
    classes = tc.get(f"{API}/peers/{mine['id']}/apps", params=since, headers=admin).json()
    assert classes["classes"] == [{"app": "tls", "packets": 4, "bytes": 4_000, "flows": 2}]
    classes = tc.get(f"{API}/peers/{theirs['id']}/apps", params=since, headers=admin).json()
    assert classes["classes"] == []
    # Server names (WIREWARDEN_CLASSIFY_NAMES): its own peer's, checked again here.
    fleet.usage.names = True
    shown = tc.get(f"{API}/peers/{mine['id']}/apps", params=since, headers=admin).json()
    assert shown["names"] == [{"app": "tls", "name": "shop.test", "flows": 2}]
    shown = tc.get(f"{API}/peers/{theirs['id']}/apps", params=since, headers=admin).json()
    assert shown["names"] == []
    # The same batch again (its ack was lost): stored once.
    tc.post(f"{API}/agent/messages", content=encode(report), headers=_bearer(one))
    with fleet.engine.connect() as conn:
        assert len(conn.execute(select(DnsQuery.id)).all()) == 1
    # The next report's counters count what they moved since these.
    later = Report(seq=2, apps=[{**apps[1], "bytes": 4_500, "packets": 6, "flows": 3}])
    tc.post(f"{API}/agent/messages", content=encode(later), headers=_bearer(one))
    classes = tc.get(f"{API}/peers/{mine['id']}/apps", params=since, headers=admin).json()
    assert classes["classes"] == [{"app": "tls", "packets": 6, "bytes": 4_500, "flows": 3}]


def test_removed_node_is_refused_and_its_socket_closed(
    tc: TestClient, admin: dict[str, str], fleet: Container
) -> None:
    credential = _enrol(tc, _add_node(tc, admin, "n1"))
    with tc.websocket_connect(f"{API}/agent/ws", headers=_bearer(credential)) as ws:
        ws.send_text(encode(Hello(node="n1", version="t")))
        assert decode_from_server(ws.receive_text()).type == "snapshot"
        assert tc.delete(f"{API}/nodes/n1", headers=admin).status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4401
    refused = tc.get(f"{API}/agent/state?wait=0", headers=_bearer(credential))
    assert refused.status_code == 401
    beat = Heartbeat(
        peers=0, online_peers=0, rx_bps=0, tx_bps=0, cpu_percent=0, version="t", uptime_s=1
    )
    posted = tc.post(f"{API}/agent/messages", content=encode(beat), headers=_bearer(credential))
    assert posted.status_code == 401
    with tc.websocket_connect(f"{API}/agent/ws", headers=_bearer(credential)) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4401


def test_long_poll_waits_for_a_change_and_answers_a_delta(
    tc: TestClient, admin: dict[str, str], fleet: Container
) -> None:
    credential = _enrol(tc, _add_node(tc, admin, "n1"))
    _interface(tc, admin, "wgn1", "n1", "50")
    first = decode_from_server(
        tc.get(f"{API}/agent/state?wait=0", headers=_bearer(credential)).text
    )
    assert first.type == "snapshot"
    query = f"revision={first.revision}&hash={first.hash}"
    same = decode_from_server(
        tc.get(f"{API}/agent/state?{query}&wait=0", headers=_bearer(credential)).text
    )
    assert same.type == "current"
    made = tc.post(f"{API}/interfaces/wgn1/peers", json={"name": "p"}, headers=admin)
    assert made.status_code == 201
    step = decode_from_server(
        tc.get(f"{API}/agent/state?{query}&wait=5", headers=_bearer(credential)).text
    )
    assert step.type == "delta" and step.base == first.revision
    assert digest(patch(first.state, step.patch)) == step.hash


def _beat(tc: TestClient, credential: str) -> None:
    beat = Heartbeat(
        peers=0, online_peers=0, rx_bps=0, tx_bps=0, cpu_percent=1, version="t", uptime_s=1
    )
    answer = tc.post(f"{API}/agent/messages", content=encode(beat), headers=_bearer(credential))
    assert answer.status_code == 204, answer.text


def _gauge(tc: TestClient, admin: dict[str, str], line: str) -> bool:
    return line in tc.get("/metrics", headers=admin).text.splitlines()


def test_silent_node_goes_offline_and_comes_back(
    tc: TestClient, admin: dict[str, str], fleet: Container
) -> None:
    credential = _enrol(tc, _add_node(tc, admin, "n1"))
    assert _node(tc, admin, "n1")["status"] == "pending"
    _beat(tc, credential)
    revision = _node(tc, admin, "n1")["revision"]
    assert _node(tc, admin, "n1")["status"] == "online"
    assert _gauge(tc, admin, 'wirewarden_node_up{node="n1"} 1.0')
    with fleet.engine.begin() as conn:
        conn.execute(update(NodeStatus).values(last_seen=datetime.now(UTC) - timedelta(seconds=31)))
    assert _node(tc, admin, "n1")["status"] == "offline"  # shown at once
    assert _gauge(tc, admin, 'wirewarden_node_up{node="n1"} 0.0')
    assert fleet.nodes.mark_offline() == ["n1"]
    assert fleet.nodes.mark_offline() == []  # once
    _beat(tc, credential)
    assert _node(tc, admin, "n1")["status"] == "online"
    assert _node(tc, admin, "n1")["revision"] == revision  # heartbeats bump nothing
    events = tc.get(f"{API}/audit", headers=admin).json()
    items = events["items"] if isinstance(events, dict) else events
    actions = [e["action"] for e in items if e["target"] == "n1"]
    assert actions.count("node.online") == 2 and actions.count("node.offline") == 1


def test_one_replica_holds_the_chores(fleet: Container) -> None:
    first, second = Leadership(fleet.engine), Leadership(fleet.engine)
    try:
        assert first.held() and first.held()
        assert not second.held()
        first.release()
        assert second.held()
    finally:
        first.release()
        second.release()


def test_a_change_on_replica_b_reaches_an_agent_on_replica_a(
    tc: TestClient, admin: dict[str, str], fleet: Container
) -> None:
    """Two control planes on one PostgreSQL database: the agent's session on A, the change
    made through B, carried by NOTIFY/LISTEN."""
    credential = _enrol(tc, _add_node(tc, admin, "n1"))
    _interface(tc, admin, "wgn1", "n1", "50")
    other = build_fast(fleet.settings, dataplane=FakeDataplane(), stats_max_age=0)
    try:
        with TestClient(create_app(other, run_loop=False)) as replica_b:
            listener = tc.app.state.agents.listener  # type: ignore[attr-defined]
            assert listener is not None and listener.ready.wait(10)
            with tc.websocket_connect(f"{API}/agent/ws", headers=_bearer(credential)) as ws:
                ws.send_text(encode(Hello(node="n1", version="t")))
                first = decode_from_server(ws.receive_text())
                made = replica_b.post(
                    f"{API}/interfaces/wgn1/peers", json={"name": "via-b"}, headers=admin
                )
                assert made.status_code == 201, made.text
                step = decode_from_server(ws.receive_text())
        assert step.type == "delta" and step.base == first.revision < step.revision
        doc = patch(first.state, step.patch)
        assert digest(doc) == step.hash
        assert made.json()["public_key"] in doc["desired"]["interfaces"]["wgn1"]["peers"]
    finally:
        other.engine.dispose()


def test_parallel_placements_fill_nodes_evenly_and_never_beyond(
    tc: TestClient, admin: dict[str, str], fleet: Container
) -> None:
    """50 placements at once over 3 online nodes of capacity 20: 16-17 each, none over 20."""
    made = tc.post(f"{API}/tenants", json={"name": "acme"}, headers=admin)
    assert made.status_code == 201, made.text
    for i, name in enumerate(("n1", "n2", "n3")):
        _beat(tc, _enrol(tc, _add_node(tc, admin, name, region="eu", capacity=20)))
        body = {"name": f"acme-{name}", "node": name, "tenant": "acme"}
        body |= {"address": f"10.{60 + i}.0.1/24", "listen_port": 51900}
        assert tc.post(f"{API}/interfaces", json=body, headers=admin).status_code == 201
    _add_node(tc, admin, "dead", region="eu", capacity=1000)  # pending: never chosen

    def place(i: int) -> dict[str, Any]:
        answer = tc.post(
            f"{API}/tenants/acme/peers", json={"name": f"p{i}", "region": "eu"}, headers=admin
        )
        assert answer.status_code == 201, answer.text
        placed: dict[str, Any] = answer.json()
        return placed

    with ThreadPoolExecutor(10) as pool:
        placed = list(pool.map(place, range(50)))
    per_node = Counter(p["interface"] for p in placed)
    assert sum(per_node.values()) == 50
    assert max(per_node.values()) <= 20 and max(per_node.values()) - min(per_node.values()) <= 1
    shown = {n["name"]: n for n in tc.get(f"{API}/nodes", headers=admin).json()}
    assert sorted(shown[n]["peers"] for n in ("n1", "n2", "n3")) == [16, 17, 17]
    # Drained and other regions are skipped; none left: 409.
    tc.patch(f"{API}/nodes/n1", json={"drain": True}, headers=admin)
    assert place(50)["interface"] != "acme-n1"
    none = tc.post(f"{API}/tenants/acme/peers", json={"name": "x", "region": "us"}, headers=admin)
    assert none.status_code == 409 and none.json()["field"] == "region"


def test_a_dns_policy_change_reaches_every_node_s_agent(
    tc: TestClient, admin: dict[str, str]
) -> None:
    credential = _enrol(tc, _add_node(tc, admin, "n1"))
    _interface(tc, admin, "wgn1", "n1", "50")
    with tc.websocket_connect(f"{API}/agent/ws", headers=_bearer(credential)) as ws:
        ws.send_text(encode(Hello(node="n1", version="t")))
        first = decode_from_server(ws.receive_text())
        assert first.type == "snapshot"
        policy = {"deny": ["ads.example"], "blocklists": [], "allow": []}
        changed = tc.put(f"{API}/dns/policies/default", json=policy, headers=admin)
        assert changed.status_code == 200, changed.text
        # Pushed at the commit, not left for the node to find at its next resync.
        step = decode_from_server(ws.receive_text())
        assert step.type == "delta" and step.revision > first.revision
        doc = patch(first.state, step.patch)
        assert doc["dns"]["policies"]["default"]["deny"] == ["ads.example"]


# ---- the tunnel API relayed by a node's agent (web/tunnel.py, agent/tunnel.py)

RELAY = f"{API}/agent/tunnel/v1"


def _peer(tc: TestClient, admin: dict[str, str], interface: str, name: str) -> dict[str, Any]:
    made = tc.post(f"{API}/interfaces/{interface}/peers", json={"name": name}, headers=admin)
    assert made.status_code == 201, made.text
    peer: dict[str, Any] = made.json()
    patched = tc.patch(
        f"{API}/peers/{peer['id']}", json={"expose_ports": "8000-8100"}, headers=admin
    )
    assert patched.status_code == 200, patched.text
    return peer


def _as(credential: str | None, gateway: str, peer: dict[str, Any]) -> dict[str, str]:
    """The headers an agent relays a connection from `peer`'s tunnel address with."""
    source = str(peer["address"]).split("/")[0]
    headers = {GATEWAY_HEADER: gateway, SOURCE_HEADER: source}
    return headers | (_bearer(credential) if credential else {})


def _forwards(tc: TestClient, credential: str) -> list[dict[str, Any]]:
    """The forwards in the state the node's agent is sent."""
    answer = tc.get(f"{API}/agent/state?wait=0", headers=_bearer(credential))
    snapshot = decode_from_server(answer.text)
    assert snapshot.type == "snapshot"
    found: list[dict[str, Any]] = snapshot.state["desired"].get("forwards", [])
    return found


def test_an_agent_relays_its_own_peers_and_no_one_elses(
    tc: TestClient, admin: dict[str, str], fleet: Container
) -> None:
    n1 = _enrol(tc, _add_node(tc, admin, "n1"))
    n2 = _enrol(tc, _add_node(tc, admin, "n2"))
    _interface(tc, admin, "wgn1", "n1", "50")
    _interface(tc, admin, "wgn2", "n2", "51")
    alice = _peer(tc, admin, "wgn1", "alice")
    _peer(tc, admin, "wgn2", "mallory")
    body = {"proto": "tcp", "remote_port": 8080, "local_port": 3000}

    # n2's agent claims alice's address pair (headers are the agent's word): not its node.
    stolen = tc.post(f"{RELAY}/mappings", json=body, headers=_as(n2, "10.50.0.1", alice))
    assert stolen.status_code == 403, stolen.text
    # No credential, or a user's token in its place: nothing acts.
    anonymous = tc.post(f"{RELAY}/mappings", json=body, headers=_as(None, "10.50.0.1", alice))
    assert anonymous.status_code == 401
    as_user = _as(None, "10.50.0.1", alice) | admin
    assert tc.post(f"{RELAY}/mappings", json=body, headers=as_user).status_code == 401
    # A header that is no address: refused naming it.
    bad = _as(n1, "10.50.0.1", alice) | {GATEWAY_HEADER: "10.50.0.1; drop table"}
    refused = tc.post(f"{RELAY}/mappings", json=body, headers=bad)
    assert refused.status_code == 422 and refused.json()["field"] == GATEWAY_HEADER
    assert tc.get(f"{API}/mappings", headers=admin).json() == []

    # n1's agent relays alice's own registration: on n1, with n1's revision to wait for.
    made = tc.post(f"{RELAY}/mappings", json=body, headers=_as(n1, "10.50.0.1", alice))
    assert made.status_code == 201, made.text
    assert made.json()["peer"] == "alice"
    assert int(made.headers[REVISION_HEADER]) == _node(tc, admin, "n1")["revision"]
    assert tc.get(f"{RELAY}/whoami", headers=_as(n1, "10.50.0.1", alice)).json()["peer"] == "alice"
    address = str(alice["address"]).split("/")[0]
    assert [(f["remote_port"], f["address"], f["local_port"]) for f in _forwards(tc, n1)] == [
        (8080, address, 3000)
    ]
    assert _forwards(tc, n2) == []
    # Not this host's kernel, nor its desired state: the node's.
    assert fleet.reconciler.source().forwards == ()
    # Its traffic as the node's agent reports it (n2 naming alice's target: dropped).
    shown = tc.get(f"{API}/mappings", headers=admin).json()[0]
    assert (shown["node"], shown["bytes"]) == ("n1", None)
    target = {"t": 1, "proto": "tcp", "address": address, "port": 3000}
    for credential, seq, size in ((n2, 1, 10**9), (n1, 1, 4_096), (n1, 2, 5_000)):
        report = Report(seq=seq, exposed=[{**target, "bytes": size}])
        answer = tc.post(
            f"{API}/agent/messages", content=encode(report), headers=_bearer(credential)
        )
        assert answer.status_code == 200, answer.text
    assert tc.get(f"{API}/mappings", headers=admin).json()[0]["bytes"] == 5_000

    # The heartbeat renews; removal takes the forward out of the node's state.
    beat = tc.post(f"{RELAY}/heartbeat", headers=_as(n1, "10.50.0.1", alice))
    assert beat.status_code == 200 and beat.json()["renewed"] == 1
    gone = tc.delete(f"{RELAY}/mappings", headers=_as(n1, "10.50.0.1", alice))
    assert gone.status_code == 200 and gone.json() == {"removed": 1}
    assert int(gone.headers[REVISION_HEADER]) == _node(tc, admin, "n1")["revision"]
    assert _forwards(tc, n1) == []


def test_a_nodes_expired_mappings_are_reaped_by_the_control_plane(
    tc: TestClient, admin: dict[str, str], fleet: Container
) -> None:
    n1 = _enrol(tc, _add_node(tc, admin, "n1"))
    _interface(tc, admin, "wgn1", "n1", "50")
    alice = _peer(tc, admin, "wgn1", "alice")
    body = {"proto": "udp", "remote_port": 8000, "local_port": 3000}
    made = tc.post(f"{RELAY}/mappings", json=body, headers=_as(n1, "10.50.0.1", alice))
    assert made.status_code == 201, made.text
    assert len(_forwards(tc, n1)) == 1
    with fleet.engine.begin() as conn:
        conn.execute(
            update(ExposedPort).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    before = _node(tc, admin, "n1")["revision"]
    assert fleet.mappings.reap() == 1
    assert _node(tc, admin, "n1")["revision"] == before + 1
    assert _forwards(tc, n1) == []


@pytest.fixture
def named(
    tmp_path: Path, dataplane: FakeDataplane, database_url: str | None
) -> Iterator[Container]:
    """A fleet's control plane that publishes names under names.example.test."""
    if database_url is None:
        pytest.skip("a fleet runs on PostgreSQL")
    settings = Settings(
        data_dir=tmp_path / "named",
        public_host="vpn.example.test",
        database_url=database_url,
        expose_domain="names.example.test",
    )
    built = build_fast(settings, dataplane=dataplane, stats_max_age=0)
    yield built
    built.engine.dispose()


def _names(tc: TestClient, credential: str) -> dict[str, Any] | None:
    """The names in the state the node's agent is sent (its own front serves them)."""
    answer = tc.get(f"{API}/agent/state?wait=0", headers=_bearer(credential))
    found: dict[str, Any] | None = decode_from_server(answer.text).state["desired"]["names"]
    return found


def test_a_node_peers_name_is_passed_to_its_nodes_front_and_no_one_else_names_it(
    named: Container,
) -> None:
    with TestClient(create_app(named, run_loop=False)) as tc:
        token = named.tokens.create("admin", ["read", "write", "admin"], SYSTEM)
        admin = {"Authorization": f"Bearer {token}"}
        n1 = _enrol(tc, _add_node(tc, admin, "n1"))
        n2 = _enrol(tc, _add_node(tc, admin, "n2"))
        _interface(tc, admin, "wgn1", "n1", "50")
        _interface(tc, admin, "wgn2", "n2", "51")
        public = {"public_host": "n1.example.test"}
        assert tc.patch(f"{API}/nodes/n1", json=public, headers=admin).status_code == 200
        alice, mallory = _peer(tc, admin, "wgn1", "alice"), _peer(tc, admin, "wgn2", "mallory")
        for peer in (alice, mallory):
            tc.patch(f"{API}/peers/{peer['id']}", json={"expose_ports": "80,443"}, headers=admin)
        body = {"name": "blog", "local_port": 3000}

        # n2's agent claims alice's address pair: not its node's peer.
        stolen = tc.post(f"{RELAY}/names", json=body, headers=_as(n2, "10.50.0.1", alice))
        assert stolen.status_code == 403, stolen.text
        # mallory's node has no public host for this front to pass visitors to.
        nowhere = tc.post(f"{RELAY}/names", json=body, headers=_as(n2, "10.51.0.1", mallory))
        assert nowhere.status_code == 409 and nowhere.json()["field"] == "name"
        assert "public host" in nowhere.json()["detail"]
        assert named.mappings.routes() == {}

        made = tc.post(f"{RELAY}/names", json=body, headers=_as(n1, "10.50.0.1", alice))
        assert made.status_code == 201, made.text
        host = "blog.default.names.example.test"
        assert made.json()["url"] == f"http://{host}" and made.json()["node"] == "n1"
        assert int(made.headers[REVISION_HEADER]) == _node(tc, admin, "n1")["revision"]
        # n1's own front routes it to alice; the control plane's passes it to n1's front.
        address = str(alice["address"]).split("/")[0]
        mapping = made.json()["id"]
        route = {"mapping_id": mapping, "address": address, "port": 3000, "tls": False}
        assert _names(tc, n1) == {"http_port": 80, "https_port": 443, "routes": [[host, route]]}
        assert _names(tc, n2) == {"http_port": 80, "https_port": 443, "routes": []}
        assert named.mappings.routes() == {host: Route(mapping, "n1.example.test", 80, False)}
        # An interface's endpoint (which a tenant admin may set) never steers this front:
        # visitors go to the node's public host, as the operator set it, whatever it says.
        aimed = {"endpoint": "127.0.0.1:22"}
        assert tc.patch(f"{API}/interfaces/wgn1", json=aimed, headers=admin).status_code == 200
        assert named.mappings.routes() == {host: Route(mapping, "n1.example.test", 80, False)}
        # No kernel forward for a name, on the node or here.
        assert _forwards(tc, n1) == []

        # Gone with its client: out of n1's state and of this front's table.
        gone = tc.delete(f"{RELAY}/mappings", headers=_as(n1, "10.50.0.1", alice))
        assert gone.status_code == 200 and gone.json() == {"removed": 1}
        assert _names(tc, n1) == {"http_port": 80, "https_port": 443, "routes": []}
        assert named.mappings.routes() == {}


def test_a_node_peers_config_dials_its_node_never_the_control_planes_host(
    tc: TestClient, admin: dict[str, str], fleet: Container
) -> None:
    """A remote node's interface without an endpoint: its clients dial the node's public
    host, not WIREWARDEN_PUBLIC_HOST (this control plane's, vpn.example.test)."""
    _add_node(tc, admin, "n1")
    _interface(tc, admin, "wgn1", "n1", "50")
    alice = _peer(tc, admin, "wgn1", "alice")
    url = f"{API}/peers/{alice['id']}/config"
    nowhere = tc.get(url, headers=admin)
    assert nowhere.status_code == 409 and nowhere.json()["field"] == "endpoint"
    assert "--public-host" in nowhere.json()["detail"]
    tc.patch(f"{API}/nodes/n1", json={"public_host": "n1.example.test"}, headers=admin)
    assert "Endpoint = n1.example.test:51900" in tc.get(url, headers=admin).text
    # The interface's own endpoint, where set, comes first.
    tc.patch(f"{API}/interfaces/wgn1", json={"endpoint": "vpn-n1.example.test"}, headers=admin)
    assert "Endpoint = vpn-n1.example.test:51900" in tc.get(url, headers=admin).text

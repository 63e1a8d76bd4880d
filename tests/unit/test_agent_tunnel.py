"""The tunnel API a fleet node's agent serves its peers (agent/tunnel.py) and its client
to the control plane (fleet/client.py TunnelRelay), with a fake control plane: a handler.

Written as a peer's requests over the agent's socket (the ASGI scope's client and server
are the connection's addresses)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from wirewarden.agent.agent import Agent
from wirewarden.agent.files import SealedFiles
from wirewarden.agent.held import HeldState
from wirewarden.agent.host import Pass
from wirewarden.agent.outbox import Outbox
from wirewarden.agent.tunnel import MAX_BODY, gateways, relay_app
from wirewarden.domain.state import DesiredState, InterfaceState
from wirewarden.fleet.client import RelayAnswer, Relayed, Server, TunnelRelay, Unreachable
from wirewarden.fleet.protocol import GATEWAY_HEADER, REVISION_HEADER, SOURCE_HEADER

GATEWAY, PEER = "10.50.0.1", "10.50.0.2"
HOST_PORTS = {"tcp": frozenset({22, 7070}), "udp": frozenset({53})}


class ControlPlane:
    """Answers every relayed request with `answer`, keeping what it was asked."""

    def __init__(self, answer: RelayAnswer | None) -> None:
        self.answer, self.asked = answer, list[Relayed]()

    async def call(self, request: Relayed) -> RelayAnswer:
        self.asked.append(request)
        if self.answer is None:
            raise Unreachable("connection refused")
        return self.answer


class Kernel:
    """When the node's passes got where: what `reached` waits for."""

    def __init__(self, applied: int) -> None:
        self.applied, self.waited = applied, list[int]()

    async def reached(self, revision: int, timeout: float) -> bool:
        self.waited.append(revision)
        return revision <= self.applied


def _ask(
    plane: ControlPlane, kernel: Kernel, method: str, path: str, body: object = None
) -> httpx.Response:
    app = relay_app(plane.call, lambda proto: HOST_PORTS[proto], kernel.reached)
    transport = httpx.ASGITransport(app=app, client=(PEER, 40000))

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{GATEWAY}:7070") as c:
            content = body if isinstance(body, bytes) else json.dumps(body) if body else None
            return await c.request(method, path, content=content)

    return asyncio.run(go())


def test_a_registration_is_relayed_with_the_connections_addresses_and_waits_for_the_kernel() -> (
    None
):
    made = json.dumps({"id": 1, "peer": "alice"}).encode()
    plane, kernel = ControlPlane(RelayAnswer(201, made, 42)), Kernel(applied=42)
    # The body names another address: relayed as it is (the control plane refuses extra
    # fields); the addresses that count are the connection's.
    body = {"proto": "tcp", "remote_port": 8080, "local_port": 3000, "client_ip": "10.50.0.9"}
    answer = _ask(plane, kernel, "POST", "/v1/mappings", body)
    assert (answer.status_code, answer.content) == (201, made)
    [asked] = plane.asked
    assert (asked.method, asked.path, asked.gateway, asked.source) == (
        "POST",
        "/v1/mappings",
        GATEWAY,
        PEER,
    )
    assert json.loads(asked.body) == body
    assert kernel.waited == [42]
    # A refusal is passed on as it is, and waits for nothing.
    refused = json.dumps({"detail": "port 2222 is not one this peer may publish"}).encode()
    plane.answer = RelayAnswer(403, refused, None)
    answer = _ask(plane, kernel, "POST", "/v1/mappings", {"remote_port": 2222, "local_port": 1})
    assert (answer.status_code, answer.json()["detail"]) == (403, json.loads(refused)["detail"])
    assert kernel.waited == [42]


def test_a_port_this_host_listens_on_is_refused_on_the_node_and_never_relayed() -> None:
    plane, kernel = ControlPlane(RelayAnswer(201, b"{}", 1)), Kernel(applied=1)
    for proto, port in (("tcp", 22), ("udp", 53)):
        body = {"proto": proto, "remote_port": port, "local_port": 3000}
        answer = _ask(plane, kernel, "POST", "/v1/mappings", body)
        assert answer.status_code == 409
        assert answer.json() == {
            "detail": f"{proto} port {port} is taken by a service of the server",
            "field": "remote_port",
        }
    assert plane.asked == []
    # Garbage is the control plane's to refuse (it names the field): relayed.
    assert _ask(plane, kernel, "POST", "/v1/mappings", b"\xff{not json").status_code == 201


def test_an_oversized_body_and_an_absent_control_plane_get_clear_answers() -> None:
    plane, kernel = ControlPlane(None), Kernel(applied=0)
    big = _ask(plane, kernel, "POST", "/v1/mappings", b"x" * (MAX_BODY + 1))
    assert big.status_code == 413 and plane.asked == []
    away = _ask(plane, kernel, "POST", "/v1/heartbeat")
    assert away.status_code == 503 and "unreachable" in away.json()["detail"]
    assert _ask(plane, kernel, "GET", "/metrics").status_code == 404  # only /v1 is relayed
    assert len(plane.asked) == 1


def test_the_relay_sends_the_credential_and_the_addresses_and_reads_the_revision() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": 3}, headers={REVISION_HEADER: "17"})

    relay = TunnelRelay(
        Server("https://cp.example.test"), "wwn_secret", httpx.MockTransport(handler)
    )

    async def go() -> RelayAnswer:
        try:
            return await relay.call(Relayed("POST", "/v1/mappings", b"{}", GATEWAY, PEER))
        finally:
            await relay.close()

    answer = asyncio.run(go())
    assert (answer.status, answer.revision, json.loads(answer.body)) == (201, 17, {"id": 3})
    [request] = seen
    assert str(request.url) == "https://cp.example.test/api/v1/agent/tunnel/v1/mappings"
    assert request.headers["authorization"] == "Bearer wwn_secret"
    assert (request.headers[GATEWAY_HEADER], request.headers[SOURCE_HEADER]) == (GATEWAY, PEER)


def test_the_agent_listens_on_the_gateways_of_the_state_it_holds() -> None:
    assert gateways(None) == frozenset()
    interfaces = {
        "wg0": InterfaceState("wg0", "k", 51820, ("10.50.0.1/24", "fd00:50::1/64"), 1420),
        "wg1": InterfaceState("wg1", "k", 51821, ("10.51.0.1/24",), 1420),
    }
    desired = DesiredState(interfaces, frozenset(interfaces), (), None)
    assert gateways(desired) == {"10.50.0.1", "fd00:50::1", "10.51.0.1"}


def test_an_answer_waits_for_a_pass_of_its_revision_or_a_later_one(tmp_path: Path) -> None:
    files = SealedFiles(tmp_path / "agent")
    agent = Agent(files, HeldState(files), Outbox(files, 4), Server("https://cp.test"), "t")

    async def go() -> tuple[bool, bool, bool]:
        agent._loop = asyncio.get_running_loop()
        agent.passed(Pass(5, True, None))
        await asyncio.sleep(0)
        past = await agent.reached(5, 0.01)
        waiting = asyncio.create_task(agent.reached(7, 5.0))
        await asyncio.sleep(0.01)
        agent.passed(Pass(6, True, None))  # not there yet
        await asyncio.sleep(0.01)
        assert not waiting.done()
        agent.passed(Pass(8, True, None))  # a later pass holds it too
        later = await waiting
        late = await agent.reached(20, 0.05)  # never: the answer goes anyway
        return past, later, late

    assert asyncio.run(go()) == (True, True, False)
    assert agent._awaited == []

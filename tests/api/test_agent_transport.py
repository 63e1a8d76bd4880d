"""The agent against a real control plane: uvicorn on loopback with TLS from a private
CA, on PostgreSQL, the agent with the in-memory data plane. It enrols with the join
token, takes its node's state in, applies it and acks; a change reaches it as a delta;
its reports become the control plane's traffic; it applies its saved state with the
control plane gone; a removed node's agent stops with exit code 78. Over the WebSocket
and over the long-poll fallback alike."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.ports import free_port
from tests.tlsca import Issued, issue
from wirewarden.agent.agent import EXIT_REFUSED, Agent
from wirewarden.agent.node import NodeHost
from wirewarden.bootstrap import Container, build_agent
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.state import PeerStats
from wirewarden.fleet.client import Link, Server, open_link
from wirewarden.services.context import SYSTEM
from wirewarden.web.app import create_app

API = "/api/v1"


@pytest.fixture
def fleet(container: Container, database_url: str | None) -> Container:
    if database_url is None:
        pytest.skip("a fleet runs on PostgreSQL")
    return container


@dataclass
class ControlPlane:
    url: str
    tls: Issued
    admin: httpx.Client
    server: uvicorn.Server
    thread: threading.Thread

    def api(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        answer = self.admin.request(method, API + path, json=body)
        assert answer.status_code == expect, answer.text
        return answer.json() if answer.content else None

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the control plane did not stop"


def _start(container: Container, tls: Issued, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    config = uvicorn.Config(
        create_app(container, run_loop=False),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        log_level="warning",
        # Stopped means stopped: the agent must find no control plane afterwards.
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return server, thread


@pytest.fixture
def control(fleet: Container, tmp_path: Path) -> Iterator[ControlPlane]:
    tls = issue(tmp_path / "tls", ["127.0.0.1"])
    port = free_port()
    server, thread = _start(fleet, tls, port)
    token = fleet.tokens.create("admin", ["read", "write", "admin"], SYSTEM)
    url = f"https://127.0.0.1:{port}"
    admin = httpx.Client(
        base_url=url,
        verify=ssl.create_default_context(cafile=str(tls.ca)),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    plane = ControlPlane(url, tls, admin, server, thread)
    yield plane
    admin.close()
    plane.stop()


@dataclass
class Running:
    agent: Agent
    host: NodeHost
    dataplane: FakeDataplane
    loop: asyncio.AbstractEventLoop
    task: asyncio.Task[int] | None = None
    result: Future[int] = field(default_factory=Future)

    def stop(self) -> int:
        if not self.result.done():
            task = self.task
            assert task is not None
            self.loop.call_soon_threadsafe(task.cancel)
        return self.result.result(timeout=30)


def _run_agent(
    data_dir: Path,
    server: str,
    ca: Path,
    join_token: str | None,
    websocket: bool,
) -> Running:
    settings = Settings(
        data_dir=data_dir,
        agent_server=server,
        agent_join_token=join_token,
        agent_ca_file=ca,
        dns_enabled=False,
        metrics_period=0.5,
        reconcile_period=2.0,
    )
    dataplane = FakeDataplane()
    agent, host = build_agent(settings, dataplane=dataplane, version="test")

    async def link(server: Server, credential: str) -> Link:
        return await open_link(server, credential, allow_websocket=websocket)

    agent.opener = link
    agent.timing = type(agent.timing)(heartbeat=1.0, report=0.5, backoff_first=0.2, backoff_cap=1)
    loop = asyncio.new_event_loop()
    running = Running(agent, host, dataplane, loop)

    def main() -> None:
        async def go() -> int:
            running.task = asyncio.current_task()  # type: ignore[assignment]
            try:
                return await agent.run(host)
            except asyncio.CancelledError:
                return 0

        try:
            running.result.set_result(loop.run_until_complete(go()))
        except BaseException as exc:
            running.result.set_exception(exc)
        finally:
            loop.close()

    threading.Thread(target=main, daemon=True).start()
    return running


def _until(
    what: Callable[[], Any], timeout: float = 20, message: Callable[[], str] | str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message or "timed out")
        time.sleep(0.1)


def _peers_of(dataplane: FakeDataplane, name: str) -> set[str]:
    device = dataplane.devices.get(name)
    return set(device.peers) if device is not None else set()


@pytest.mark.parametrize("websocket", [True, False], ids=["websocket", "long-poll"])
def test_an_agent_enrols_converges_follows_changes_reports_and_survives_its_control_plane(
    control: ControlPlane, fleet: Container, tmp_path: Path, websocket: bool
) -> None:
    join = control.api("POST", "/nodes", {"name": "n1", "region": "eu"}, expect=201)["join_token"]
    body = {"name": "wgn1", "node": "n1", "address": "10.61.0.1/24", "listen_port": 51900}
    control.api("POST", "/interfaces", body, expect=201)
    first = control.api("POST", "/interfaces/wgn1/peers", {"name": "phone"}, expect=201)
    data = tmp_path / "agent"
    running = _run_agent(data, control.url, control.tls.ca, join, websocket)
    try:
        # Enrolled, online, and the kernel holds what the control plane wants.
        _until(lambda: _peers_of(running.dataplane, "wgn1") == {first["public_key"]})
        node = _until(
            lambda: (
                (n := control.api("GET", "/nodes/n1"))["status"] == "online"
                and n["applied_revision"] == n["revision"]
                and n
            ),
            message="the node never acked its state",
        )
        assert node["in_sync"] and node["hash_matches"] and node["version"] == "test"
        # This control plane's own kernel never saw the node's interface.
        assert "wgn1" not in fleet.node.dataplane.devices  # type: ignore[attr-defined]

        # A change is pushed (a delta) and applied at once.
        second = control.api("POST", "/interfaces/wgn1/peers", {"name": "laptop"}, expect=201)
        _until(lambda: second["public_key"] in _peers_of(running.dataplane, "wgn1"))
        control.api("PATCH", f"/peers/{first['id']}", {"enabled": False})
        # Disabled: kept on the device with no AllowedIPs (no packet in or out).
        _until(
            lambda: running.dataplane.devices["wgn1"].peers[first["public_key"]].allowed_ips == ()
        )
        _until(
            lambda: (n := control.api("GET", "/nodes/n1"))["applied_revision"] == n["revision"],
            message=lambda: f"never acked: {control.api('GET', '/nodes/n1')}",
        )

        # What the node's kernel counted becomes the control plane's traffic and history.
        stats = PeerStats("198.51.100.7:4000", int(time.time()), 5000, 7000)
        running.dataplane.counters[("wgn1", second["public_key"])] = stats
        endpoints = _until(
            lambda: control.api("GET", f"/peers/{second['id']}/endpoints"),
            message="the report never arrived",
        )
        assert endpoints[0]["endpoint"] == "198.51.100.7:4000"
    finally:
        assert running.stop() == 0

    # The control plane is gone: a new start applies the saved state all the same.
    control.stop()
    again = _run_agent(data, control.url, control.tls.ca, None, websocket)
    try:
        both = {first["public_key"], second["public_key"]}
        _until(lambda: _peers_of(again.dataplane, "wgn1") == both)
        assert again.dataplane.devices["wgn1"].peers[first["public_key"]].allowed_ips == ()
        assert not again.agent.connected.is_set()
    finally:
        assert again.stop() == 0


def test_a_removed_node_s_agent_stops_with_78(control: ControlPlane, tmp_path: Path) -> None:
    join = control.api("POST", "/nodes", {"name": "n2"}, expect=201)["join_token"]
    running = _run_agent(tmp_path / "agent", control.url, control.tls.ca, join, True)
    try:
        _until(lambda: control.api("GET", "/nodes/n2")["status"] == "online")
        control.api("DELETE", "/nodes/n2", expect=204)
        assert running.result.result(timeout=30) == EXIT_REFUSED
    finally:
        running.stop()


def test_an_agent_gives_its_join_token_to_no_server_its_ca_did_not_sign(
    control: ControlPlane, fleet: Container, tmp_path: Path
) -> None:
    join = control.api("POST", "/nodes", {"name": "n3"}, expect=201)["join_token"]
    stranger = issue(tmp_path / "other", ["127.0.0.1"], ca_name="someone else")
    running = _run_agent(tmp_path / "agent", control.url, stranger.ca, join, True)
    try:
        time.sleep(3)  # it dials, and dials again: never past the certificate check
        assert not running.agent.connected.is_set()
        assert not running.result.done()
    finally:
        running.stop()
    # The token was never spent: the real agent enrols with it.
    answer = control.admin.post(f"{API}/agent/enrol", json={"join_token": join})
    assert answer.status_code == 200 and answer.json()["node"] == "n3"

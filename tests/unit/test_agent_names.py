"""A fleet node's own front listener: it serves the names of the state its agent holds,
on the ports that state says, routing a visitor by Host to the peer's service (here a
server on loopback standing for the peer's tunnel address), and nothing else."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from pathlib import Path

from tests.unit.test_fleet_protocol import _state
from wirewarden.agent.files import SealedFiles
from wirewarden.agent.held import HeldState
from wirewarden.agent.names import NodeFront
from wirewarden.domain.vhost import NodeNames, Route
from wirewarden.fleet.protocol import snapshot

HOST = "blog.acme.names.test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hold(held: HeldState, revision: int, names: NodeNames | None) -> None:
    state = _state(3)
    held.take(snapshot(replace(state, desired=replace(state.desired, names=names)), revision)[0])


async def _get(port: int, host: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def _service(seen: list[bytes]) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\npeer")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


def test_the_nodes_front_serves_the_held_names_and_follows_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        seen: list[bytes] = []
        service = await _service(seen)
        port = int(service.sockets[0].getsockname()[1])
        held = HeldState(SealedFiles(tmp_path / "agent"))
        front = NodeFront(held, ["127.0.0.1"])
        await front.follow()
        assert front.front is None  # no state yet: no listener
        http, https = _free_port(), _free_port()
        route = Route(1, "127.0.0.1", port, False)
        _hold(held, 5, NodeNames(http, https, ((HOST, route),)))
        await front.follow()
        try:
            assert (await _get(http, HOST)).endswith(b"peer")
            assert seen[0].startswith(b"GET /x HTTP/1.1\r\nHost: " + HOST.encode())
            # A name this node does not hold: the front's 404, never another route.
            assert (await _get(http, "other.acme.names.test")).startswith(b"HTTP/1.1 404")
            # The name gone from the held state: gone from the front once it follows.
            _hold(held, 6, NodeNames(http, https))
            await front.follow()
            assert (await _get(http, HOST)).startswith(b"HTTP/1.1 404")
            # New ports: listening there instead; no names at all: not listening.
            moved = _free_port()
            _hold(held, 7, NodeNames(moved, https, ((HOST, route),)))
            await front.follow()
            assert (await _get(moved, HOST)).endswith(b"peer")
            _hold(held, 8, None)
            await front.follow()
            assert front.front is None
            try:
                await _get(moved, HOST)
                raise AssertionError("still listening")
            except ConnectionRefusedError:
                pass
        finally:
            await front.stop()
            service.close()

    asyncio.run(scenario())

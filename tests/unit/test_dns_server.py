"""The UDP listener: bursts read from the loop, answered, sent back; a failing query costs
only its own answer; IPv4 and IPv6; closing stops it."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.ports import free_port
from wirewarden.dns.server import Listeners


class Echo:
    """A resolver stand-in: answers b"ok:" + the query, fails on b"boom", ignores b"drop"."""

    def handle(self, data: bytes, ip: str, tcp: bool) -> bytes | None:
        if data == b"boom":
            raise RuntimeError("a bug")
        return None if data == b"drop" else b"ok:" + data


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_udp_burst_answers_each_query_and_survives_a_failing_one(address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6")

    async def run() -> list[bytes]:
        port = free_port()
        listeners = Listeners(Echo(), port)  # type: ignore[arg-type]
        await listeners.update({address})
        assert address in listeners.open, listeners.errors
        client = socket.socket(family, socket.SOCK_DGRAM)
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            # Sent before the loop reads: one burst holds all of them.
            for query in (b"a", b"boom", b"drop", b"b"):
                client.sendto(query, (address, port))
            answers = [await asyncio.wait_for(loop.sock_recv(client, 512), 5) for _ in range(2)]
            await listeners.close()
            assert not listeners.open
            client.sendto(b"c", (address, port))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(loop.sock_recv(client, 512), 0.3)
            return answers
        finally:
            client.close()

    assert sorted(asyncio.run(run())) == [b"ok:a", b"ok:b"]

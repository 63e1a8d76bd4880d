"""Relays on the peer's tunnel address to a local service, TCP and UDP (asyncio).

The server forwards a published port to <tunnel address>:<relay port> in its kernel; the
relay passes the bytes on to the service where it listens (often 127.0.0.1, which the
tunnel cannot reach by itself)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)
UDP_IDLE_SECONDS = 120.0
CHUNK = 65536


class TcpRelay:
    def __init__(self, bind_host: str, target: tuple[str, int]) -> None:
        self.bind_host, self.target = bind_host, target
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, self.bind_host, 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError as exc:
            log.warning("cannot reach %s:%d: %s", *self.target, exc)
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    count: Callable[[int], None] | None = None,
) -> None:
    """Copies one direction until its end, then half-closes (or closes) the other side."""
    try:
        while data := await reader.read(CHUNK):
            if count is not None:
                count(len(data))
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class _Upstream(asyncio.DatagramProtocol):
    """One remote sender's flow to the service: answers go back to that sender."""

    def __init__(self, relay: UdpRelay, remote: tuple[str, int]) -> None:
        self.relay, self.remote = relay, remote
        self.transport: asyncio.DatagramTransport | None = None
        self.last = asyncio.get_running_loop().time()
        self.pending: list[bytes] = []  # what came before the flow's socket was ready

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last = asyncio.get_running_loop().time()
        if self.relay.transport is not None:
            self.relay.transport.sendto(data, self.remote)


class UdpRelay(asyncio.DatagramProtocol):
    def __init__(self, bind_host: str, target: tuple[str, int]) -> None:
        self.bind_host, self.target = bind_host, target
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple[str, int], _Upstream] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, (self.bind_host, 0))
        self._sweeper = loop.create_task(self._sweep())
        return int(transport.get_extra_info("sockname")[1])

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for flow in self.flows.values():
            if flow.transport is not None:
                flow.transport.close()
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            flow = self.flows[addr] = _Upstream(self, addr)
            asyncio.get_running_loop().create_task(self._open(addr, flow))
        flow.last = asyncio.get_running_loop().time()
        if flow.transport is None:
            flow.pending.append(data)
        else:
            flow.transport.sendto(data)

    async def _open(self, addr: tuple[str, int], flow: _Upstream) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: flow, remote_addr=self.target)
        except OSError as exc:
            self.flows.pop(addr, None)
            log.warning("cannot reach %s:%d: %s", *self.target, exc)
            return
        if flow.transport is not None:
            for data in flow.pending:
                flow.transport.sendto(data)
            flow.pending.clear()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(UDP_IDLE_SECONDS / 4)
            now = asyncio.get_running_loop().time()
            for addr, flow in list(self.flows.items()):
                if now - flow.last > UDP_IDLE_SECONDS and flow.transport is not None:
                    flow.transport.close()
                    del self.flows[addr]

"""Forward 127.0.0.1:PORT of this namespace to a TCP port inside another namespace.

The demo's `serve` runs in the server namespace, but the browser is in the root one.
Sockets belong to the namespace they were created in, so a single worker thread enters
the server namespace (setns(2) is per thread) and only creates sockets there; everything
else (accept, connect, copying bytes, WebSockets included) runs on the asyncio loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from wirewarden.relay.relays import pipe

CLONE_NEWNET = 0x40000000


def _enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(Path("/var/run/netns") / name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


class Relay:
    def __init__(self, netns: str, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.listen, self.target = listen, target
        self._pool = ThreadPoolExecutor(1, initializer=_enter_netns, initargs=(netns,))
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        # Fail now, not at the first connection, when the namespace cannot be entered.
        await asyncio.get_running_loop().run_in_executor(self._pool, lambda: None)
        self._server = await asyncio.start_server(self._handle, *self.listen)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        loop = asyncio.get_running_loop()
        sock = await loop.run_in_executor(self._pool, socket.socket)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, self.target)
        except OSError:
            sock.close()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(sock=sock)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        self._pool.shutdown(wait=False, cancel_futures=True)

"""DNS over TLS (RFC 7858) on one kept-open connection per upstream.

A TLS handshake costs a round trip or two and a few milliseconds of CPU: opening a
connection per query (dnspython's `asyncquery.tls`) paid that for every cache miss.
Here a connection stays open and queries are pipelined on it (RFC 7858 §3.4): each
goes out with an id unused on that connection, and answers, which may come in any
order, are matched back by id and question. The connection is closed when it has been
idle for a while, and opened again on demand; when the server closes a kept connection
(its own idle timeout) before answering, the query is asked once more on a new one
(RFC 7766 §6.2.1). Errors go up to the caller, which tries its next upstream or fails
closed: nothing here ever asks anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import struct

import dns.exception
import dns.message
import dns.query

IDLE_SECONDS = 30.0
_LEN = struct.Struct("!H")


class DotClosed(ConnectionError):
    """The connection ended before the answer came."""


class DotConnection:
    """One TLS connection: writes queries, and a reader task hands answers to waiters."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle: float
    ) -> None:
        self.reader, self.writer, self.idle = reader, writer, idle
        self.loop = asyncio.get_running_loop()
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None
        self.task = self.loop.create_task(self._read())
        self._arm()

    async def ask(self, request: dns.message.Message, timeout: float) -> dns.message.Message:
        if self.closed:
            raise DotClosed("the DoT connection is closed")
        wire = bytearray(request.to_wire())
        qid = self._free_id()
        wire[0:2] = qid.to_bytes(2, "big")
        waiter: asyncio.Future[bytes] = self.loop.create_future()
        self.pending[qid] = waiter
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        try:
            self.writer.write(_LEN.pack(len(wire)) + wire)
            data = await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            # A kept connection that stays silent is no use to anyone: the next query
            # gets a new one.
            self.close()
            raise dns.exception.Timeout from None
        finally:
            self.pending.pop(qid, None)
            self._arm()
        response = dns.message.from_wire(data, ignore_trailing=True)
        response.id = request.id  # it was asked under our id; the question must match
        if not request.is_response(response):
            raise dns.query.BadResponse
        return response

    def _free_id(self) -> int:
        while True:
            qid = random.getrandbits(16)  # TLS, not the id, is what stops spoofing here
            if qid not in self.pending:
                return qid

    async def _read(self) -> None:
        try:
            while True:
                (size,) = _LEN.unpack(await self.reader.readexactly(2))
                data = await self.reader.readexactly(size)
                waiter = self.pending.get(int.from_bytes(data[:2], "big")) if size >= 12 else None
                if waiter is not None and not waiter.done():
                    waiter.set_result(data)
        except (asyncio.IncompleteReadError, OSError, ssl.SSLError):
            pass  # the server closed it, or the network did
        finally:
            self.close()

    def _arm(self) -> None:
        """Close the connection after `idle` seconds with nothing asked."""
        if not self.pending and not self.closed:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_later(self.idle, self.close)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        for waiter in self.pending.values():
            if not waiter.done():
                waiter.set_exception(DotClosed("the DoT connection closed before answering"))
                waiter.exception()  # retrieved: an abandoned waiter is not an error to log
        self.writer.close()
        if asyncio.current_task() is not self.task:
            self.task.cancel()


class DotClient:
    """The kept connection to one DoT upstream, opened when first needed."""

    def __init__(
        self,
        host: str,
        port: int,
        server_name: str,
        context: ssl.SSLContext,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self.host, self.port, self.server_name = host, port, server_name
        self.context, self.idle = context, idle
        self.connection: DotConnection | None = None
        self.opened = 0  # connections opened so far (status, tests)
        self._lock = asyncio.Lock()

    async def query(self, request: dns.message.Message, timeout: float) -> dns.message.Message:
        connection, fresh = await self._connection(timeout)
        try:
            return await connection.ask(request, timeout)
        except DotClosed:
            if fresh:
                raise
        # The server closed a connection we had kept: once more, on a new one.
        connection, _ = await self._connection(timeout)
        return await connection.ask(request, timeout)

    async def _connection(self, timeout: float) -> tuple[DotConnection, bool]:
        async with self._lock:  # queries arriving together share one handshake
            if self.connection is not None and not self.connection.closed:
                return self.connection, False
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host, self.port, ssl=self.context, server_hostname=self.server_name
                ),
                timeout,
            )
            self.opened += 1
            self.connection = DotConnection(reader, writer, self.idle)
            return self.connection, True

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            with contextlib.suppress(Exception):
                await self.connection.writer.wait_closed()
            self.connection = None

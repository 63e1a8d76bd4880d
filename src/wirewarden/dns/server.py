"""UDP and TCP listeners on port 53 of the gateway addresses, feeding the resolver."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections import deque
from collections.abc import Coroutine
from typing import Any

from wirewarden.dns.resolver import Resolver

log = logging.getLogger(__name__)

IP_FREEBIND = 15
IPV6_FREEBIND = 78
RCVBUF = 4 * 1024 * 1024
TCP_IDLE = 10.0
BURST = 64  # datagrams read per wake-up before the answers go out
MAX_UDP = 65535
_LEN = struct.Struct("!H")


def _socket(address: str, port: int, kind: socket.SocketKind) -> socket.socket:
    """A socket bound to address:port, also before the address exists on a link
    (FREEBIND): the resolver may start before the reconciler brings the link up."""
    v6 = ":" in address
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, kind)
    try:
        if v6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        else:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.bind((address, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Tasks:
    """Keeps running slow-path tasks referenced until they finish."""

    def __init__(self) -> None:
        self.running: set[asyncio.Task[Any]] = set()

    def start(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.running.add(task)
        task.add_done_callback(self.running.discard)


class UdpListener:
    """One UDP socket read straight from the event loop: a burst of datagrams is read,
    answered, and the answers are sent back to back.

    Faster than a DatagramProtocol (measured: docs/benchmarks.md, dns_bench): no
    transport object per send, and the answers of a burst leave together, so a client
    that waits for them is woken once per burst rather than once per answer (the
    wake-ups were a sixth of the resolver's CPU under load). Cache misses become
    tasks on the loop, as before. The burst is bounded so TCP and timers keep their turn.
    """

    def __init__(self, sock: socket.socket, resolver: Resolver, tasks: _Tasks) -> None:
        self.sock, self.resolver, self.tasks = sock, resolver, tasks
        self.loop = asyncio.get_running_loop()
        self.backlog: deque[tuple[bytes, Any]] = deque()  # answers the kernel had no room for
        self.closed = False
        self.loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        # One pass reads and answers (no list of the burst), and the answers go out
        # together after it; locals, because this runs for every datagram.
        recv, handle = self.sock.recvfrom, self.resolver.handle
        answers: list[tuple[bytes, Any]] = []
        for _ in range(BURST):
            try:
                data, addr = recv(MAX_UDP)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # an ICMP error queued on the socket: not fatal
                log.debug("udp receive: %s", exc)
                break
            try:
                out = handle(data, addr[0], False)
            except Exception:  # a bug must cost one answer, never the rest of the burst
                log.exception("DNS: answering a query from %s failed", addr[0])
                continue
            if out.__class__ is bytes:
                answers.append((out, addr))
            elif out is not None:
                self.tasks.start(self._later(out, addr))  # type: ignore[arg-type]
        send = self._send
        for answer, addr in answers:
            send(answer, addr)

    def _send(self, out: bytes, addr: Any) -> None:
        """Send now, or after what is already waiting for room in the kernel."""
        if self.backlog:
            self.backlog.append((out, addr))
            return
        try:
            self.sock.sendto(out, addr)
        except (BlockingIOError, InterruptedError):
            self.backlog.append((out, addr))
            self.loop.add_writer(self.sock.fileno(), self._writable)
        except OSError as exc:  # e.g. the address went away with its link
            log.debug("udp send to %s: %s", addr, exc)

    def _writable(self) -> None:
        while self.backlog:
            out, addr = self.backlog[0]
            try:
                self.sock.sendto(out, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("udp send to %s: %s", addr, exc)
            self.backlog.popleft()
        self.loop.remove_writer(self.sock.fileno())

    async def _later(self, pending: Coroutine[Any, Any, bytes | None], addr: Any) -> None:
        out = await pending
        if out is not None and not self.closed:
            self._send(out, addr)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            if self.backlog:
                self.loop.remove_writer(self.sock.fileno())
                self.backlog.clear()
            self.sock.close()


class TcpProtocol(asyncio.Protocol):
    """Length-prefixed messages (RFC 7766), several per connection, answered in order
    of completion; an idle connection is closed."""

    def __init__(self, resolver: Resolver, tasks: _Tasks) -> None:
        self.resolver, self.tasks = resolver, tasks
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        self._arm()

    def _arm(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(TCP_IDLE, self._close)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._arm()
        while len(self.buffer) >= 2:
            (size,) = _LEN.unpack_from(self.buffer)
            if len(self.buffer) < 2 + size:
                return
            message, self.buffer = self.buffer[2 : 2 + size], self.buffer[2 + size :]
            out = self.resolver.handle(message, self.peer, True)
            if out is None:
                continue
            if isinstance(out, bytes):
                self._send(out)
            else:
                self.tasks.start(self._later(out))

    async def _later(self, pending: Coroutine[Any, Any, bytes | None]) -> None:
        out = await pending
        if out is not None:
            self._send(out)

    def _send(self, out: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_LEN.pack(len(out)) + out)


class Listeners:
    """The open UDP+TCP sockets by address; `update` opens and closes to match."""

    def __init__(self, resolver: Resolver, port: int) -> None:
        self.resolver, self.port = resolver, port
        self.tasks = _Tasks()
        self.open: dict[str, tuple[UdpListener, asyncio.Server]] = {}
        self.errors: dict[str, str] = {}

    async def update(self, addresses: set[str]) -> None:
        for address in sorted(set(self.open) - addresses):
            udp, tcp = self.open.pop(address)
            udp.close()
            tcp.close()
        for address in sorted(addresses - set(self.open)):
            try:
                self.open[address] = await self._listen(address)
                self.errors.pop(address, None)
                log.info("DNS resolver listening on %s port %d", address, self.port)
            except OSError as exc:
                if self.errors.get(address) != str(exc):
                    log.warning("DNS resolver cannot listen on %s: %s", address, exc)
                self.errors[address] = str(exc)

    async def _listen(self, address: str) -> tuple[UdpListener, asyncio.Server]:
        loop = asyncio.get_running_loop()
        udp_sock = _socket(address, self.port, socket.SOCK_DGRAM)
        try:
            tcp_sock = _socket(address, self.port, socket.SOCK_STREAM)
        except BaseException:
            udp_sock.close()
            raise
        try:
            tcp = await loop.create_server(
                lambda: TcpProtocol(self.resolver, self.tasks), sock=tcp_sock, backlog=256
            )
        except BaseException:
            udp_sock.close()
            tcp_sock.close()
            raise
        return UdpListener(udp_sock, self.resolver, self.tasks), tcp

    async def close(self) -> None:
        await self.update(set())

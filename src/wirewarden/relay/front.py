"""The front listener of HTTP services by name (expose): on the public side, it reads
the host a visitor asks for (HTTP's Host header, TLS's SNI, never decrypting) and passes
the connection on to the peer that published the name, through the tunnel.

Visitors are anonymous and hostile: the head is read under a size and a time limit,
connections are capped, and the routes come from memory (a table refreshed off the loop),
so no visitor makes the server query its database more than a few times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from wirewarden.domain import vhost
from wirewarden.domain.vhost import HEAD_LIMIT, Asked, Route
from wirewarden.relay.relays import pipe

log = logging.getLogger(__name__)
HEAD_SECONDS = 10.0  # a visitor that has not named its host by then is dropped
CONNECT_SECONDS = 5.0
MAX_VISITORS = 1024
REFRESH_SECONDS = 1.0
# A name asked for and not known is looked up again at most this often (a name
# registered a moment ago serves at once; a scanner's misses cost little).
MISS_REFRESH_SECONDS = 0.25

Routes = Callable[[], Mapping[str, Route]]


def _answer(status: str, text: str, extra: str = "") -> bytes:
    body = text.encode() + b"\n"
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    )
    return head.encode() + body


NOT_FOUND = _answer("404 Not Found", "No service is published at this name.")
BAD_GATEWAY = _answer("502 Bad Gateway", "The service behind this name does not answer.")
BAD_REQUEST = _answer("400 Bad Request", "A request naming its host (Host header) is needed.")


@dataclass
class Front:
    """Listens on `ports` (HTTP, HTTPS) of `hosts` (None: every address)."""

    routes: Routes
    hosts: Sequence[str] | None
    http_port: int
    https_port: int
    table: Mapping[str, Route] = field(default_factory=dict)
    visitors: int = 0
    # Bytes passed per mapping id since start, both ways.
    traffic: dict[int, int] = field(default_factory=dict)
    _servers: list[asyncio.Server] = field(default_factory=list)
    _refresher: asyncio.Task[None] | None = None
    _refreshed: float = 0.0
    _loop: asyncio.AbstractEventLoop | None = None
    _loading: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.refresh()
        for port, tls in ((self.http_port, False), (self.https_port, True)):
            try:
                server = await asyncio.start_server(
                    functools.partial(self._visitor, tls=tls),
                    host=list(self.hosts) if self.hosts else None,
                    port=port,
                    reuse_address=True,
                    limit=HEAD_LIMIT,
                )
            except OSError as exc:
                log.warning("names: cannot listen on port %d: %s", port, exc)
                continue
            self._servers.append(server)
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_often())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()

    @property
    def ports(self) -> list[int]:
        return [int(s.sockets[0].getsockname()[1]) for s in self._servers if s.sockets]

    def changed(self) -> None:
        """Names came or went (called from any thread): read them again now."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: loop.create_task(self.refresh()))

    async def refresh(self) -> None:
        async with self._loading:
            await self._load()

    async def _load(self) -> None:
        started = asyncio.get_running_loop().time()
        try:
            self.table = await asyncio.to_thread(self.routes)
        except Exception:  # the database away: keep serving the names we know
            log.warning("names: cannot read the routes", exc_info=True)
        self._refreshed = started

    async def _fresher(self, asked: float) -> None:
        """Routes read after `asked`: a name registered a moment ago serves at once, and
        misses (a scanner's) share one read every MISS_REFRESH_SECONDS at most."""
        async with self._loading:
            if self._refreshed >= asked:
                return
            wait = self._refreshed + MISS_REFRESH_SECONDS - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._load()

    async def _refresh_often(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            await self.refresh()

    async def _find(self, host: str) -> Route | None:
        found = vhost.route(host, self.table)
        if found is None:
            await self._fresher(asyncio.get_running_loop().time())
            found = vhost.route(host, self.table)
        return found

    async def _visitor(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool
    ) -> None:
        if self.visitors >= MAX_VISITORS:
            writer.close()
            return
        self.visitors += 1
        try:
            await self._serve(reader, writer, tls)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.visitors -= 1
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool
    ) -> None:
        try:
            head, asked = await asyncio.wait_for(_read_head(reader, tls), HEAD_SECONDS)
        except TimeoutError:
            return
        if asked is None:
            if not tls:
                await _say(writer, BAD_REQUEST)
            return
        host = asked.host if isinstance(asked, Asked) else asked
        found = await self._find(host)
        if found is None or (tls and not found.tls):
            if not tls:
                await _say(writer, NOT_FOUND)
            return  # TLS: no certificate of ours to say anything with
        if found.tls and not tls and isinstance(asked, Asked):
            # A TLS service asked for over plain HTTP: where it is served.
            suffix = "" if self.https_port == 443 else f":{self.https_port}"
            location = f"Location: https://{host}{suffix}{asked.target}\r\n"
            await _say(writer, _answer("308 Permanent Redirect", "Served over HTTPS.", location))
            return
        await self._pass(reader, writer, head, found, tls)

    async def _pass(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: bytes,
        found: Route,
        tls: bool,
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(found.address, found.port), CONNECT_SECONDS
            )
        except (OSError, TimeoutError):
            if not tls:
                await _say(writer, BAD_GATEWAY)
            return
        up_writer.write(head)

        def count(size: int) -> None:
            self.traffic[found.mapping_id] = self.traffic.get(found.mapping_id, 0) + size

        count(len(head))
        await asyncio.gather(pipe(reader, up_writer, count), pipe(up_reader, writer, count))


async def _read_head(reader: asyncio.StreamReader, tls: bool) -> tuple[bytes, Asked | str | None]:
    """The connection's first bytes and the host they ask for (None: none, or garbage)."""
    head = b""
    while len(head) < HEAD_LIMIT:
        chunk = await reader.read(HEAD_LIMIT - len(head))
        if not chunk:
            return head, None
        head += chunk
        asked = vhost.tls_host(head) if tls else vhost.http_host(head)
        if asked == "none":
            return head, None
        if asked != "more":
            return head, asked
    return head, None


async def _say(writer: asyncio.StreamWriter, answer: bytes) -> None:
    writer.write(answer)
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()

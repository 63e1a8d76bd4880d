"""The agent's side of the fleet protocol's transport (docs/fleet.md): enrolment, the
WebSocket, and the long-poll fallback for a path that does not carry WebSockets (a proxy
that refuses the upgrade). Both links speak the same messages; the agent does not know
which one it has.

The agent always dials out, verifying the control plane's certificate (the system's CAs,
or `ca_file` for a private CA). Plain http is allowed to a loopback address only: the
credential must not cross a network in the clear.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode, urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from wirewarden.fleet.protocol import (
    CLOSE_REVOKED,
    GATEWAY_HEADER,
    REVISION_HEADER,
    SOURCE_HEADER,
    TUNNEL_PATH,
    Ack,
    Current,
    Delta,
    Heartbeat,
    Hello,
    ProtocolError,
    Report,
    ReportAck,
    Snapshot,
    decode_from_server,
    encode,
)

log = logging.getLogger(__name__)
API = "/api/v1"
# The control plane's long-poll holds a request this long when nothing changes.
POLL_WAIT = 25.0
# A snapshot of 10,000 peers is tens of MB; the control plane is trusted for size.
MAX_MESSAGE = 512 * 2**20
TIMEOUT = 30.0

ToServer = Hello | Ack | Heartbeat | Report
FromServer = Snapshot | Delta | Current | ReportAck


class Revoked(Exception):
    """The control plane refuses this credential or join token: retrying cannot help."""


class Unreachable(Exception):
    """The control plane could not be reached, or the link dropped: try again later."""


@dataclass(frozen=True)
class Server:
    """Where the control plane is and how its certificate is checked."""

    url: str
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("give the control plane's URL, like https://vpn.example.com")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise ValueError(
                "https is required (the node credential must not cross a network "
                "in the clear); plain http only to a loopback address"
            )

    @property
    def api(self) -> str:
        return self.url.rstrip("/") + API

    @property
    def socket_url(self) -> str:
        base = self.api.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return base + "/agent/ws"

    def tls(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https://"):
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def enrol(server: Server, join_token: str, version: str) -> tuple[str, str]:
    """Trade the one-time join token for (node name, node credential)."""
    async with httpx.AsyncClient(verify=server.tls() or True, timeout=TIMEOUT) as http:
        try:
            answer = await http.post(
                f"{server.api}/agent/enrol", json={"join_token": join_token, "version": version}
            )
        except httpx.HTTPError as exc:
            raise Unreachable(f"enrolment: {exc!r}") from exc
    if answer.status_code in (401, 403):
        raise Revoked(f"enrolment refused: {_detail(answer)}")
    if answer.status_code != 200:
        raise Unreachable(f"enrolment answered {answer.status_code}: {_detail(answer)}")
    body = answer.json()
    return str(body["node"]), str(body["credential"])


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail"))
    except ValueError:
        return answer.text[:200]


class Link(Protocol):
    """One connection to the control plane."""

    kind: str

    async def send(self, message: ToServer) -> ReportAck | None:
        """Send a message; a long-poll link answers a report at once (the WebSocket's
        report_ack comes through `receive`)."""
        ...

    async def receive(self) -> FromServer: ...

    async def close(self) -> None: ...


class SocketLink:
    kind = "websocket"

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    async def send(self, message: ToServer) -> ReportAck | None:
        try:
            await self.socket.send(encode(message))
        except ConnectionClosed as exc:
            raise _closed(exc) from exc
        return None

    async def receive(self) -> FromServer:
        try:
            text = await self.socket.recv()
        except ConnectionClosed as exc:
            raise _closed(exc) from exc
        try:
            return decode_from_server(text)
        except ProtocolError as exc:
            raise Unreachable(f"the control plane sent a bad message: {exc}") from exc

    async def close(self) -> None:
        await self.socket.close()


def _closed(exc: ConnectionClosed) -> Exception:
    received = exc.rcvd
    if received is not None and received.code == CLOSE_REVOKED:
        return Revoked(f"the control plane closed the link: {received.reason}")
    return Unreachable(f"the link closed: {exc}")


class PollLink:
    """The long-poll fallback: `receive` waits on GET /agent/state for the state after
    the one held (the revision and digest the last message it returned carried)."""

    kind = "long-poll"

    def __init__(self, http: httpx.AsyncClient, api: str) -> None:
        self.http, self.api = http, api
        self.revision, self.hash = 0, ""

    async def send(self, message: ToServer) -> ReportAck | None:
        if isinstance(message, Hello):
            # The next poll asks from here: a snapshot when it is not the node's state.
            self.revision, self.hash = message.revision, message.hash
            return None
        answer = await self._call("POST", "/agent/messages", content=encode(message))
        if isinstance(message, Report):
            found = decode_from_server(answer.content)
            return found if isinstance(found, ReportAck) else None
        return None

    async def receive(self) -> FromServer:
        query = urlencode({"revision": self.revision, "hash": self.hash, "wait": POLL_WAIT})
        answer = await self._call("GET", f"/agent/state?{query}")
        try:
            message = decode_from_server(answer.content)
        except ProtocolError as exc:
            raise Unreachable(f"the control plane sent a bad message: {exc}") from exc
        if isinstance(message, Snapshot | Delta | Current):
            self.revision, self.hash = message.revision, message.hash
        return message

    async def _call(self, method: str, path: str, content: str | None = None) -> httpx.Response:
        try:
            answer = await self.http.request(method, self.api + path, content=content)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{method} {path}: {exc!r}") from exc
        if answer.status_code in (401, 403):
            raise Revoked(f"the control plane refused the credential: {_detail(answer)}")
        if answer.status_code >= 300:
            raise Unreachable(f"{method} {path} answered {answer.status_code}: {_detail(answer)}")
        return answer

    async def close(self) -> None:
        await self.http.aclose()


async def open_link(server: Server, credential: str, allow_websocket: bool = True) -> Link:
    """A link to the control plane: the WebSocket, or the long-poll fallback when the
    path refuses the upgrade (a proxy answering it with a plain HTTP status)."""
    if allow_websocket:
        try:
            socket = await connect(
                server.socket_url,
                additional_headers=_bearer(credential),
                ssl=server.tls(),
                max_size=MAX_MESSAGE,
                open_timeout=TIMEOUT,
            )
            return SocketLink(socket)
        except InvalidStatus as exc:
            code = exc.response.status_code
            if code in (401, 403):
                raise Revoked(f"the control plane refused the credential ({code})") from exc
            if code >= 500:
                raise Unreachable(f"the WebSocket upgrade answered {code}") from exc
            log.warning("the WebSocket upgrade answered %d: falling back to long-poll", code)
        except InvalidHandshake as exc:
            log.warning("no WebSocket (%s): falling back to long-poll", exc)
        except (OSError, TimeoutError) as exc:
            raise Unreachable(f"{server.socket_url}: {exc!r}") from exc
    http = httpx.AsyncClient(
        verify=server.tls() or True,
        headers=_bearer(credential),
        timeout=httpx.Timeout(TIMEOUT, read=POLL_WAIT + TIMEOUT),
    )
    return PollLink(http, server.api)


@dataclass(frozen=True)
class Relayed:
    """A request of a peer to the tunnel API, as its agent relays it: what it asked
    (`path` under /v1) and the address pair its connection had."""

    method: str
    path: str
    body: bytes
    gateway: str
    source: str


@dataclass(frozen=True)
class RelayAnswer:
    status: int
    body: bytes
    # The node's revision after the change it made (None: it made none).
    revision: int | None


class TunnelRelay:
    """The agent's client for its peers' tunnel API: each request goes to the control
    plane with the node credential, on one pooled connection."""

    def __init__(
        self, server: Server, credential: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.url = server.api + TUNNEL_PATH
        self.http = httpx.AsyncClient(
            verify=server.tls() or True,
            headers=_bearer(credential),
            timeout=TIMEOUT,
            transport=transport,
        )

    async def call(self, request: Relayed) -> RelayAnswer:
        headers = {GATEWAY_HEADER: request.gateway, SOURCE_HEADER: request.source}
        if request.body:
            headers["content-type"] = "application/json"
        try:
            answer = await self.http.request(
                request.method, self.url + request.path, content=request.body, headers=headers
            )
        except httpx.HTTPError as exc:
            raise Unreachable(f"{request.method} {request.path}: {exc!r}") from exc
        told = answer.headers.get(REVISION_HEADER, "")
        revision = int(told) if told.isdigit() else None
        return RelayAnswer(answer.status_code, answer.content, revision)

    async def close(self) -> None:
        await self.http.aclose()

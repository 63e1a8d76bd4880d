"""Request bodies: capped as they stream in, and never read for a request without valid
credentials (the sign-in forms aside).

FastAPI reads a route's body before it runs the route's dependencies (authentication
among them), and Starlette spools multipart parts to temporary files: left alone, anyone
could make the server hold or store any amount of data before it answers 401. So, before
the application sees a request with a body:

- a Content-Length over the cap is answered 413 without reading a byte;
- the credentials are checked (web.deps.identify, whose answer the route's dependency
  reuses); without valid ones the application gets an empty body and answers as it would
  (401, or the sign-in page), the client's bytes unread;
- otherwise the bytes are counted as they arrive, and the read that passes the cap fails
  with 413 (a chunked body, or one longer than its Content-Length said).

Answers to a refused body close the connection, so the server does not drain the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wirewarden.fleet.protocol import TUNNEL_PATH

# Routes that take a body from whoever asks: the two sign-in forms (API and dashboard).
# And an agent's enrolment, whose join token is in its (small) body.
PUBLIC_BODIES = frozenset(
    {("POST", "/api/v1/auth/login"), ("POST", "/login"), ("POST", "/api/v1/agent/enrol")}
)
# Routes an agent posts to with its node credential (not a user's token or session).
NODE_BODIES = frozenset(
    {("POST", "/api/v1/agent/messages")}
    | {("POST", f"/api/v1{TUNNEL_PATH}/v1/{path}") for path in ("mappings", "names", "heartbeat")}
)

Identify = Callable[[HTTPConnection], Awaitable[object | None]]


class BodyTooLarge(HTTPException):
    """A starlette HTTPException, so that FastAPI passes it on unchanged from its body
    parsing to its JSON error handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


class BodyGate:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        identify: Identify,
        identify_node: Identify | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.identify = identify
        self.identify_node = identify_node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await _refuse(self.max_bytes, scope, receive, send)
            return
        if not await self._known(scope):
            await self.app(scope, _withheld(receive), _closing(send))
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _counted(receive, self.max_bytes), watch)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(self.max_bytes, scope, receive, send)

    async def _known(self, scope: Scope) -> bool:
        """Whether the request may send a body: a public route, or valid credentials."""
        route = (scope["method"], scope["path"])
        if route in PUBLIC_BODIES:
            return True
        if route in NODE_BODIES and self.identify_node is not None:
            return await self.identify_node(HTTPConnection(scope)) is not None
        return await self.identify(HTTPConnection(scope)) is not None


def _has_body(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


def _content_length(scope: Scope) -> int | None:
    try:
        return int(Headers(scope=scope)["content-length"])
    except (KeyError, ValueError):
        return None  # chunked (or unreadable, which the server refuses): counted instead


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        {"detail": _too_large(limit)},
        status_code=status.HTTP_413_CONTENT_TOO_LARGE,
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)


def _counted(receive: Receive, limit: int) -> Receive:
    total = 0

    async def counting() -> Message:
        nonlocal total
        message = await receive()
        if message["type"] == "http.request":
            total += len(message.get("body", b""))
            if total > limit:
                raise BodyTooLarge(limit)
        return message

    return counting


def _withheld(receive: Receive) -> Receive:
    """An empty body in place of the client's; later reads (a streaming answer waiting for
    a disconnect) pass the disconnect on and drop body chunks unkept."""
    given = False

    async def nothing() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message

    return nothing


def _closing(send: Send) -> Send:
    """The answer ends the connection: the unread body is not drained by the server."""

    async def closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)

    return closing

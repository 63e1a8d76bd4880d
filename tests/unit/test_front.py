"""The front listener of names, on loopback: a visitor reaches the service its Host or
SNI names (TLS passed through: the visitor verifies the service's own certificate), and
is refused, redirected or dropped where it should be."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.tlsca import issue
from wirewarden.domain.vhost import Route
from wirewarden.relay import front as front_module
from wirewarden.relay.front import Front

pytestmark = pytest.mark.anyio
SHOP = "eu.shop.acme.vpn.test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def plain_service(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers with the Host it was asked for: what reached it is what the visitor sent."""
    head = await reader.readuntil(b"\r\n\r\n")
    host = next(x for x in head.split(b"\r\n") if x.lower().startswith(b"host:"))
    body = b"served " + host.split(b":", 1)[1].strip()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    writer.close()


async def ask(port: int, request: bytes, context: ssl.SSLContext | None = None) -> bytes:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=SHOP if context else None
    )
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


class Scene:
    def __init__(self, front: Front, routes: dict[str, Route], ca: Path) -> None:
        self.front, self.routes, self.ca = front, routes, ca


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    issued = issue(tmp_path / "pki", [SHOP])
    service_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    service_tls.load_cert_chain(issued.cert, issued.key)
    plain = await asyncio.start_server(plain_service, "127.0.0.1", 0)
    secure = await asyncio.start_server(plain_service, "127.0.0.1", 0, ssl=service_tls)
    plain_port = plain.sockets[0].getsockname()[1]
    secure_port = secure.sockets[0].getsockname()[1]
    routes = {
        "blog.acme.vpn.test": Route(1, "127.0.0.1", plain_port, False),
        "*.shop.acme.vpn.test": Route(2, "127.0.0.1", secure_port, True),
    }
    front = Front(lambda: dict(routes), ["127.0.0.1"], free_port(), free_port())
    await front.start()
    yield Scene(front, routes, issued.ca)
    await front.stop()
    for server in (plain, secure):
        server.close()


async def test_http_by_host_and_https_by_sni_passed_through(scene: Scene) -> None:
    front = scene.front
    got = await ask(front.http_port, b"GET / HTTP/1.1\r\nHost: Blog.acme.vpn.test\r\n\r\n")
    assert got.endswith(b"served Blog.acme.vpn.test")
    # The visitor verifies the service's own certificate: the front never terminated TLS.
    trusting = ssl.create_default_context(cafile=str(scene.ca))
    got = await ask(front.https_port, f"GET / HTTP/1.1\r\nHost: {SHOP}\r\n\r\n".encode(), trusting)
    assert got.endswith(f"served {SHOP}".encode())
    assert front.traffic[1] > 0 and front.traffic[2] > 0


async def test_refusals(scene: Scene) -> None:
    front = scene.front
    unknown = await ask(front.http_port, b"GET / HTTP/1.1\r\nHost: wiki.beta.vpn.test\r\n\r\n")
    assert unknown.startswith(b"HTTP/1.1 404")
    nameless = await ask(front.http_port, b"GET / HTTP/1.1\r\n\r\n")
    assert nameless.startswith(b"HTTP/1.1 400")
    # A TLS service asked for over HTTP: sent where it is served.
    moved = await ask(front.http_port, f"GET /a?b=1 HTTP/1.1\r\nHost: {SHOP}\r\n\r\n".encode())
    assert moved.startswith(b"HTTP/1.1 308")
    assert f"Location: https://{SHOP}:{front.https_port}/a?b=1\r\n".encode() in moved
    # A plain service asked for by SNI: no certificate of ours to answer with, closed.
    lax = ssl.create_default_context()
    lax.check_hostname, lax.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", front.https_port)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await writer.start_tls(lax, server_hostname="blog.acme.vpn.test")
    writer.close()
    del reader


async def test_a_new_name_serves_at_once_and_a_dead_service_is_a_502(scene: Scene) -> None:
    port = free_port()  # nothing listens there
    scene.routes["wiki.acme.vpn.test"] = Route(3, "127.0.0.1", port, False)
    got = await ask(scene.front.http_port, b"GET / HTTP/1.1\r\nHost: wiki.acme.vpn.test\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 502")


async def test_a_silent_visitor_is_dropped(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(front_module, "HEAD_SECONDS", 0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", scene.front.http_port)
    writer.write(b"GET / HTTP/1.1\r\nHost: blog")  # and nothing more
    assert await asyncio.wait_for(reader.read(), 3) == b""
    assert scene.front.visitors == 0
    writer.close()

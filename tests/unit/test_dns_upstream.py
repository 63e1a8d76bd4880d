"""Upstream queries over real sockets on loopback: UDP with TCP fallback, DoT with a
certificate check, health marking, and failing closed."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.dnsfake import answer, udp_wire
from wirewarden.dns.upstream import UpstreamSet, parse_upstreams

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def _stream_dns(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            response = answer(await reader.readexactly(size))
            assert response is not None
            out = response.to_wire(max_size=65535)
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


class _Udp(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        response = answer(data)
        assert response is not None
        self.transport.sendto(udp_wire(response), addr)


@pytest.fixture
async def plain() -> AsyncIterator[int]:
    """The fake authoritative server on UDP and TCP of one loopback port."""
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(_stream_dns, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    udp, _ = await loop.create_datagram_endpoint(_Udp, local_addr=("127.0.0.1", port))
    yield port
    udp.close()
    server.close()


def ask(name: str, rdtype: str = "A") -> dns.message.Message:
    return dns.message.make_query(name, rdtype, use_edns=0, payload=512)


async def test_udp_answers_and_truncated_answers_retry_over_tcp(plain: int) -> None:
    upstreams = UpstreamSet(parse_upstreams(f"udp://127.0.0.1:{plain}"))
    small = await upstreams.query(ask("www.example"))
    assert small is not None and dns.message.from_wire(small.wire).answer
    big = await upstreams.query(ask("big.example", "TXT"))
    assert big is not None and len(big.wire) > 512  # whole, over TCP
    assert upstreams.upstreams[0].answered == 2


async def test_dot_checks_the_certificate_name(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path, "dns.test")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(_stream_dns, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        good = UpstreamSet(parse_upstreams(f"tls://127.0.0.1:{port}#dns.test"), _tls=trust)
        answered = await good.query(ask("www.example"))
        assert answered is not None and answered.upstream.startswith("tls://")
        wrong = UpstreamSet(parse_upstreams(f"tls://127.0.0.1:{port}#other.test"), _tls=trust)
        assert await wrong.query(ask("www.example")) is None
        assert "certificate" in (wrong.upstreams[0].last_error or "").lower()
    finally:
        server.close()


async def test_no_answer_is_none_and_repeated_failures_mark_an_upstream_down() -> None:
    upstreams = UpstreamSet(parse_upstreams("udp://127.0.0.1:9"), timeout=0.2)
    for _ in range(3):
        assert await upstreams.query(ask("www.example")) is None
    state = upstreams.status()[0]
    assert state["healthy"] is False and state["failed"] == 3
    # A down upstream is still the last resort: nothing else is ever asked.
    assert upstreams.order(0.0) == upstreams.upstreams


async def test_an_upstream_servfail_moves_to_the_next(plain: int) -> None:
    upstreams = UpstreamSet(
        parse_upstreams(f"udp://127.0.0.1:9,udp://127.0.0.1:{plain}"), timeout=0.2
    )
    got = await upstreams.query(ask("nxname.example"))
    assert got is not None and dns.message.from_wire(got.wire).rcode() == dns.rcode.NXDOMAIN
    assert got.upstream.endswith(f":{plain}")

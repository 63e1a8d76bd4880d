"""Upstream queries over real sockets on loopback: UDP with TCP fallback, DoT with a
certificate check, health marking, and failing closed."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.edns
import dns.message
import dns.name
import dns.rcode
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.dnsfake import address_for, answer, udp_wire
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


class _Failing(asyncio.DatagramProtocol):
    """A validating resolver that cannot answer: SERVFAIL, with EDE 6 (DNSSEC Bogus) for
    names under bogus.example and EDE 22 (No Reachable Authority) for the rest."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        bogus = query.question[0].name.is_subdomain(dns.name.from_text("bogus.example"))
        code = dns.edns.EDECode.DNSSEC_BOGUS if bogus else dns.edns.EDECode.NO_REACHABLE_AUTHORITY
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.SERVFAIL)
        response.use_edns(0, options=[dns.edns.EDEOption(code)])
        self.transport.sendto(response.to_wire(), addr)


async def test_a_dnssec_servfail_is_the_answer_other_servfails_move_on(plain: int) -> None:
    loop = asyncio.get_running_loop()
    failing, _ = await loop.create_datagram_endpoint(_Failing, local_addr=("127.0.0.1", 0))
    port = failing.get_extra_info("sockname")[1]
    try:
        upstreams = UpstreamSet(
            parse_upstreams(f"udp://127.0.0.1:{port},udp://127.0.0.1:{plain}"), timeout=0.5
        )
        # A bogus name is not asked again elsewhere: another upstream may not validate.
        bogus = await upstreams.query(ask("www.bogus.example"))
        assert bogus is not None and bogus.upstream.endswith(f":{port}")
        message = dns.message.from_wire(bogus.wire)
        assert message.rcode() == dns.rcode.SERVFAIL
        assert [o.code for o in message.options] == [dns.edns.EDECode.DNSSEC_BOGUS]
        assert upstreams.upstreams[0].failed == 0
        # Any other SERVFAIL: the next upstream answers.
        other = await upstreams.query(ask("www.example"))
        assert other is not None and other.upstream.endswith(f":{plain}")
        assert upstreams.upstreams[0].failed == 1
    finally:
        failing.close()


class _DotServer:
    """A DoT server on loopback that counts connections and can answer a batch of
    queries in reverse order, close after some answers, or see the client go away."""

    def __init__(self, context: ssl.SSLContext, batch: int = 1, answers_per_conn: int = 0):
        self.context, self.batch, self.answers_per_conn = context, batch, answers_per_conn
        self.connections = 0
        self.client_closed = 0
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> _DotServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        answered = 0
        try:
            while True:
                batch = []
                for _ in range(self.batch):
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    batch.append(await reader.readexactly(size))
                for query in reversed(batch):  # out of order when batch > 1
                    response = answer(query)
                    assert response is not None
                    out = response.to_wire()
                    writer.write(struct.pack("!H", len(out)) + out)
                    answered += 1
                await writer.drain()
                if self.answers_per_conn and answered >= self.answers_per_conn:
                    return  # the server's own idle/limit close
        except asyncio.IncompleteReadError:
            self.client_closed += 1
        except ConnectionError:
            pass
        finally:
            writer.close()

    def close(self) -> None:
        """Stop listening and end every open connection."""
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.close()


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting the test CA) for the name dns.test."""
    cert, key = _certificate(tmp_path, "dns.test")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    return server_ctx, ssl.create_default_context(cafile=str(cert))


@contextlib.asynccontextmanager
async def _dot(
    tls: tuple[ssl.SSLContext, ssl.SSLContext], server: dict[str, int], **upstream: Any
) -> AsyncIterator[tuple[_DotServer, UpstreamSet]]:
    """A DoT server (options as _DotServer's) and an upstream set asking only it."""
    dot = await _DotServer(tls[0], **server).start()
    spec = parse_upstreams(f"tls://127.0.0.1:{dot.port}#dns.test")
    upstreams = UpstreamSet(spec, _tls=tls[1], **upstream)
    try:
        yield dot, upstreams
    finally:
        await upstreams.close()
        dot.close()


def _address(message: dns.message.Message) -> str:
    return str(message.answer[0][0])


TlsPair = tuple[ssl.SSLContext, ssl.SSLContext]


async def test_dot_keeps_one_connection_for_many_queries(tls_pair: TlsPair) -> None:
    async with _dot(tls_pair, {}) as (server, upstreams):
        for i in range(5):
            got = await upstreams.query(ask(f"host{i}.example"))
            assert got is not None
            assert _address(dns.message.from_wire(got.wire)) == address_for(f"host{i}.example")[0]
        assert server.connections == 1


async def test_dot_pipelined_answers_out_of_order_match_their_queries(tls_pair: TlsPair) -> None:
    names = [f"pipe{i}.example" for i in range(8)]
    async with _dot(tls_pair, {"batch": 4}) as (server, upstreams):  # each 4 answered reversed
        got = await asyncio.gather(*(upstreams.query(ask(n)) for n in names))
        for name, answered in zip(names, got, strict=True):
            assert answered is not None
            response = dns.message.from_wire(answered.wire)
            assert str(response.question[0].name) == name + "."
            assert _address(response) == address_for(name)[0]
        assert server.connections == 1


async def test_dot_reconnects_when_the_server_closes(tls_pair: TlsPair) -> None:
    async with _dot(tls_pair, {"answers_per_conn": 2}) as (server, upstreams):
        for i in range(5):
            assert await upstreams.query(ask(f"again{i}.example")) is not None
        assert server.connections == 3  # 2 + 2 + 1 answers
        assert upstreams.upstreams[0].failed == 0  # the closes cost no answer


async def test_dot_closes_an_idle_connection_and_opens_a_new_one(tls_pair: TlsPair) -> None:
    async with _dot(tls_pair, {}, dot_idle=0.05) as (server, upstreams):
        assert await upstreams.query(ask("first.example")) is not None
        for _ in range(100):  # until the server sees the client go (bounded)
            if server.client_closed:
                break
            await asyncio.sleep(0.02)
        assert server.client_closed == 1
        assert await upstreams.query(ask("second.example")) is not None
        assert server.connections == 2


async def test_dot_fails_closed_when_the_server_goes_away(tls_pair: TlsPair) -> None:
    async with _dot(tls_pair, {}, timeout=0.5) as (server, upstreams):
        assert await upstreams.query(ask("up.example")) is not None
        server.close()
        await asyncio.sleep(0.05)  # lets the client's reader see the connection end
        # The kept connection is gone with the server, and no new one can be opened.
        assert await upstreams.query(ask("down.example")) is None
        assert upstreams.upstreams[0].failed == 1

"""HTTP services by name: the names a peer may publish, the host a visitor's bytes ask
for (real requests and ClientHellos, and garbage), and the route frp's order picks."""

from __future__ import annotations

import random
import ssl

import pytest

from wirewarden.cli.expose import paired_http
from wirewarden.domain import vhost
from wirewarden.domain.exposure import ExposeError, NameSpec, parse_name_spec

CURL = (
    b"GET /index.html?x=1 HTTP/1.1\r\nHost: Blog.Acme.VPN.example.com:8080\r\n"
    b"User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
)
CHROMIUM = (
    b"GET / HTTP/1.1\r\nHost: shop.acme.vpn.example.com\r\nConnection: keep-alive\r\n"
    b'sec-ch-ua: "Chromium";v="131"\r\nUpgrade-Insecure-Requests: 1\r\n'
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0.0.0\r\n"
    b"Accept: text/html,application/xhtml+xml\r\nAccept-Encoding: gzip, deflate\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n\r\n"
)


def client_hello(server_name: str | None) -> bytes:
    """The first flight of Python's own TLS client (OpenSSL), as a visitor sends it."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    if server_name is None:
        context.check_hostname = False
        tls = context.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Blog", "blog"), ("*.shop", "*.shop"), ("a.b-c.d", "a.b-c.d"), ("wiki.", "wiki")],
)
def test_names_a_peer_may_publish(name: str, expected: str) -> None:
    assert vhost.check_name(name) == expected


@pytest.mark.parametrize("name", ["", "*", "*.", "a_b", "-a", "a-", "a..b", "x" * 64, "a.b.c.d.e"])
def test_names_refused_name_the_field(name: str) -> None:
    with pytest.raises(ExposeError) as refused:
        vhost.check_name(name)
    assert refused.value.field == "name"


def test_a_name_sits_under_its_tenant_zone() -> None:
    assert vhost.hostname("*.shop", "acme", "VPN.example.com.") == "*.shop.acme.vpn.example.com"
    with pytest.raises(ExposeError):
        vhost.hostname("blog", "under_score", "vpn.example.com")
    with pytest.raises(ExposeError):
        vhost.hostname("blog", "acme", "not a domain")


def test_route_exact_then_nearest_wildcard_never_across_tenants() -> None:
    names = {
        "blog.acme.vpn.test": 1,
        "*.shop.acme.vpn.test": 2,
        "*.acme.vpn.test": 3,
        "blog.beta.vpn.test": 4,
    }
    assert vhost.route("blog.acme.vpn.test", names) == 1
    assert vhost.route("eu.shop.acme.vpn.test", names) == 2
    assert vhost.route("a.eu.shop.acme.vpn.test", names) == 2
    assert vhost.route("wiki.acme.vpn.test", names) == 3
    # Another tenant's unknown name reaches nobody: no name of acme covers beta's zone.
    assert vhost.route("wiki.beta.vpn.test", names) is None
    assert vhost.route("vpn.test", names) is None


def test_the_host_of_real_requests() -> None:
    assert vhost.http_host(CURL) == vhost.Asked("blog.acme.vpn.example.com", "/index.html?x=1")
    assert vhost.http_host(CHROMIUM) == vhost.Asked("shop.acme.vpn.example.com", "/")
    # Arriving in pieces: more is wanted until the head is complete.
    assert vhost.http_host(CURL[:30]) == "more"
    assert vhost.http_host(b"") == "more"


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n",  # an address, not a name
        b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a_b.example\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # TLS on the HTTP port
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n" + b"X: " + b"y" * 20000 + b"\r\n\r\n",
    ],
)
def test_requests_naming_no_usable_host(head: bytes) -> None:
    assert vhost.http_host(head) == "none"


def test_the_host_of_a_real_client_hello() -> None:
    hello = client_hello("Shop.Acme.vpn.example.com")
    assert vhost.tls_host(hello) == "shop.acme.vpn.example.com"
    assert vhost.tls_host(hello[:40]) == "more"
    assert vhost.tls_host(client_hello(None)) == "none"
    assert vhost.tls_host(CURL) == "none"


def test_garbage_never_raises() -> None:
    rng = random.Random(7)
    hello = client_hello("a.example")
    for _ in range(3000):
        size = rng.randrange(0, 600)
        junk = bytes(rng.randrange(256) for _ in range(size))
        flipped = bytearray(hello)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        for data in (junk, bytes(flipped), b"\x16\x03" + junk, b"GET / HTTP/1.1\r\n" + junk):
            assert vhost.tls_host(data) is not None
            assert vhost.http_host(data) is not None


def test_the_clients_name_specs() -> None:
    assert parse_name_spec("Blog=127.0.0.1:3000") == NameSpec("blog", "127.0.0.1", 3000)
    assert parse_name_spec("wiki=8080") == NameSpec("wiki", "127.0.0.1", 8080)
    assert parse_name_spec("v6=[::1]:443") == NameSpec("v6", "::1", 443)
    for bad in ("blog", "=3000", "blog=", "blog=host:port", "blog=:1"):
        with pytest.raises(ExposeError):
            parse_name_spec(bad)
    # The two-word form of the docs becomes the option's one value.
    argv = ["expose", "--http", "blog", "127.0.0.1:3000", "8080", "--http", "w=1"]
    assert paired_http(argv) == ["expose", "--http", "blog=127.0.0.1:3000", "8080", "--http", "w=1"]

"""The strict address parser (domain/addresses.py) with plain values."""

from __future__ import annotations

import ipaddress

import pytest

from wirewarden.domain import addresses
from wirewarden.domain.state import HostFootprint


@pytest.mark.parametrize(
    "text",
    ["fe80::1%eth0", "fe80::1%x\nPreUp = id", " 10.0.0.1", "10.0.0.1\n", "\uff110.0.0.1", ""],
)
def test_ip_refuses_scope_ids_whitespace_and_lookalikes(text: str) -> None:
    with pytest.raises(addresses.AddressError):
        addresses.ip(text)


def test_ip_and_network_canonical_spellings() -> None:
    assert str(addresses.ip("2001:DB8::0001")) == "2001:db8::1"
    assert str(addresses.network("10.8.0.7")) == "10.8.0.7/32"
    assert str(addresses.network("10.8.0.7/24", strict=False)) == "10.8.0.0/24"
    assert str(addresses.interface("fd00::1/64")) == "fd00::1/64"
    for bad in ("10.8.0.0/24/1", "10.8.0.0/+24", "10.8.0.0/ 24", "fe80::%1/64", "10.8.0.1/24"):
        with pytest.raises(addresses.AddressError):
            addresses.network(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("vpn.example.com", ("vpn.example.com", None)),
        ("vpn.example.com:443", ("vpn.example.com", 443)),
        ("203.0.113.5:51820", ("203.0.113.5", 51820)),
        ("[2001:db8::1]:51820", ("2001:db8::1", 51820)),
        ("[2001:db8::1]", ("2001:db8::1", None)),
        ("2001:db8::1", ("2001:db8::1", None)),
    ],
)
def test_endpoint_accepts(text: str, expected: tuple[str, int | None]) -> None:
    assert addresses.endpoint(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "[::1]\n[Interface]",
        "[::1]:51820\nPreUp = id",
        "[::1]x",
        "[fe80::1%eth0]:51820",
        "vpn.example.com:0",
        "vpn.example.com:65536",
        "vpn.example.com:+5",
        "-bad.example.com",
        "a" * 64 + ".example.com",
        "under_score.example.com",
        "10.1.2",
        "host name",
        "",
    ],
)
def test_endpoint_refuses(text: str) -> None:
    with pytest.raises(addresses.AddressError):
        addresses.endpoint(text)


def test_format_endpoint_brackets_ipv6() -> None:
    assert addresses.format_endpoint("2001:db8::1", 51820) == "[2001:db8::1]:51820"
    assert addresses.format_endpoint("vpn.example.com", 51820) == "vpn.example.com:51820"


@pytest.mark.parametrize(
    "cidr",
    [
        "127.0.0.0/8",
        "224.0.0.0/24",
        "0.0.0.0/8",
        "169.254.0.0/16",
        "240.0.0.0/24",
        "::/120",
        "::ffff:10.120.0.0/120",
        "fe80::/64",
        "ff02::/64",
        "fec0::/64",
        "0.0.0.0/0",
    ],
)
def test_reserved_space_is_refused(cidr: str) -> None:
    assert addresses.reserved_reason(ipaddress.ip_network(cidr)) is not None


@pytest.mark.parametrize("cidr", ["10.8.0.0/24", "100.64.0.0/24", "fd00:8::/64", "2001:db8::/64"])
def test_private_and_global_space_is_allowed(cidr: str) -> None:
    assert addresses.reserved_reason(ipaddress.ip_network(cidr)) is None


def test_host_refusal_names_the_field() -> None:
    host = HostFootprint(
        networks=("192.168.1.0/24", "0.0.0.0/0"),
        udp_ports=frozenset({53}),
        links=frozenset({"eth0"}),
    )
    assert addresses.host_refusal("eth0", [], None, host) is not None
    assert addresses.host_refusal("wg0", ["192.168.1.1/24"], None, host)[0] == "address"  # type: ignore[index]
    assert addresses.host_refusal("wg0", ["10.8.0.1/24"], 53, host)[0] == "listen_port"  # type: ignore[index]
    # A default route overlaps everything and is no one's network.
    assert addresses.host_refusal("wg0", ["10.8.0.1/24"], 51820, host) is None

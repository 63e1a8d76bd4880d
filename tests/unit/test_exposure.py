"""Port sets, mapping specs and leases of the expose feature: plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wirewarden.domain import firewall
from wirewarden.domain.exposure import (
    ExposeError,
    Forward,
    MappingSpec,
    expired,
    lease_until,
    parse_ports,
    parse_spec,
)
from wirewarden.domain.firewall import Element
from wirewarden.domain.state import NatNetwork


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        (None, ""),
        ("9000", "9000"),
        ("8000-8100,9000", "8000-8100,9000"),
        (" 9000 , 8000-8100 ", "8000-8100,9000"),
        ("8000-8100,8050-8200,8201", "8000-8201"),  # overlapping and adjacent ranges merge
        ("1-65535", "1-65535"),
    ],
)
def test_port_sets_parse_to_sorted_merged_ranges(text: str | None, canonical: str) -> None:
    assert str(parse_ports(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "outside 1-65535"),
        ("65536", "outside 1-65535"),
        ("80-", "is not a port"),
        ("http", "is not a port"),
        ("9000-8000", "ends before it starts"),
        ("-5", "is not a port"),
    ],
)
def test_bad_port_sets_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ExposeError, match=message) as caught:
        parse_ports(text)
    assert caught.value.field == "expose_ports"


def test_membership_and_ceilings() -> None:
    allowed = parse_ports("8000-8100,9000")
    assert 8000 in allowed and 8100 in allowed and 9000 in allowed
    assert 7999 not in allowed and 8101 not in allowed and "8000" not in allowed
    assert not parse_ports("")
    assert parse_ports("8010-8020,9000").within(allowed)
    assert parse_ports("").within(allowed)
    assert not parse_ports("8090-8110").within(allowed)
    # A range covered by two adjacent pieces of the ceiling.
    assert parse_ports("100-300").within(parse_ports("100-199,200-300"))


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("127.0.0.1:8080-8080", MappingSpec("127.0.0.1", 8080, 8080)),
        ("127.0.0.1:3000-80", MappingSpec("127.0.0.1", 3000, 80)),
        ("127.0.0.1:25565-25565/udp", MappingSpec("127.0.0.1", 25565, 25565, "udp")),
        ("[::1]:53-5353/UDP", MappingSpec("::1", 53, 5353, "udp")),
        ("8080", MappingSpec("127.0.0.1", 8080, 8080)),
        ("192.168.1.5:22-2222/tcp", MappingSpec("192.168.1.5", 22, 2222)),
    ],
)
def test_mapping_specs(text: str, spec: MappingSpec) -> None:
    assert parse_spec(text) == spec
    assert parse_spec(str(spec)) == spec


@pytest.mark.parametrize(
    "text", ["127.0.0.1:http-80", "127.0.0.1:80-0", ":80-80", "127.0.0.1:80-80/sctp", ""]
)
def test_bad_mapping_specs(text: str) -> None:
    with pytest.raises(ExposeError):
        parse_spec(text)


def test_a_lease_ends_sixty_seconds_after_the_last_heartbeat() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    until = lease_until(now)
    assert until == now + timedelta(seconds=60)
    assert not expired(until, now + timedelta(seconds=59))
    assert expired(until, now + timedelta(seconds=60))


def test_forward_elements_per_protocol() -> None:
    els = firewall.expose_elements(
        [Forward("tcp", 8080, "10.8.0.2", 8080), Forward("udp", 25565, "10.8.0.3", 2556, False)]
    )
    assert els == {
        Element("expose_tcp", "8080", "10.8.0.2 . 8080"),
        Element("expose_udp", "25565", "10.8.0.3 . 2556"),
        Element("expose_snat4", "10.8.0.2"),  # the split-tunnel one only
    }


def test_published_ports_add_no_rule() -> None:
    """A thousand mappings are map elements: the rules are those of none."""
    many = [Forward("tcp", 10000 + i, f"10.8.{i // 250}.{i % 250 + 2}", 80) for i in range(1000)]
    nat = (NatNetwork("wg0", "10.8.0.0/16"),)
    assert (
        firewall.ruleset(nat, "eth0").skeleton
        == firewall.ruleset(nat, "eth0", forwards=many).skeleton
    )

"""IP address management: which host address a new peer gets, and which it may never get."""

from __future__ import annotations

import ipaddress

import pytest

from wirewarden.domain.ipam import AddressError, Pool, next_after, pool_for


def v4(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


@pytest.mark.parametrize(
    ("addresses", "capacity", "first", "last"),
    [
        (["10.8.0.1/24"], 253, "10.8.0.2", "10.8.0.254"),
        (["10.8.0.1/30"], 1, "10.8.0.2", "10.8.0.2"),
        (["10.8.0.254/24"], 253, "10.8.0.1", "10.8.0.253"),
        (["10.8.0.100/24"], 253, "10.8.0.1", "10.8.0.254"),
        (["10.9.0.1/16"], 65_533, "10.9.0.2", "10.9.255.254"),
        (["10.8.0.1/24", "fd00:8::1/64"], 253, "10.8.0.2", "10.8.0.254"),
    ],
)
def test_capacity_and_the_first_and_last_addresses_given(
    addresses: list[str], capacity: int, first: str, last: str
) -> None:
    pool = pool_for(addresses)
    assert pool.capacity == capacity
    first_index = pool.first_free([])
    assert first_index is not None
    assert pool.v4_at(first_index) == v4(first)
    # Every usable index but the last one taken: the last one is what is left.
    taken = [i for i in range(pool.first_index, pool.last_index + 1) if pool.usable(i)]
    assert len(taken) == capacity
    assert pool.v4_at(taken[-1]) == v4(last)
    assert pool.first_free(taken[:-1]) == taken[-1]


def test_slash_30_has_one_peer_besides_the_gateway() -> None:
    pool = pool_for(["10.8.0.1/30"])
    assert pool.first_free([]) == 2
    assert next_after(pool, None) == 2
    assert pool.first_free([2]) is None
    assert next_after(pool, 2) is None


def test_gateway_at_the_top_of_the_network_is_skipped() -> None:
    pool = pool_for(["10.8.0.254/24"])
    assert pool.first_free([]) == 1
    assert next_after(pool, 252) == 253
    # .254 is the gateway and .255 the broadcast address: nothing is left above .253.
    assert next_after(pool, 253) is None
    assert pool.first_free(range(1, 254)) is None


def test_gateway_in_the_middle_is_skipped_by_both_allocators() -> None:
    pool = pool_for(["10.8.0.100/24"])
    assert next_after(pool, 99) == 101
    assert pool.first_free(range(1, 100)) == 101
    assert not pool.usable(100)


def test_first_free_finds_the_lowest_gap() -> None:
    pool = pool_for(["10.8.0.1/24"])
    assert pool.first_free([2, 3, 5, 6]) == 4
    assert pool.first_free([3, 4]) == 2
    # Duplicates and the gateway's own index in the list do not confuse it.
    assert pool.first_free([1, 2, 2, 3]) == 4


def test_exhausted_pool_gives_none() -> None:
    pool = pool_for(["10.8.0.1/24"])
    everything = list(range(2, 255))
    assert pool.first_free(everything) is None
    assert next_after(pool, 254) is None


def test_slash_16_with_50000_taken() -> None:
    pool = pool_for(["10.9.0.1/16"])
    taken = list(range(2, 50_002))
    assert next_after(pool, taken[-1]) == 50_002
    assert pool.v4_at(50_002) == v4("10.9.195.82")
    assert pool.first_free(taken) == 50_002
    # A gap left by a deleted peer is found among the 50,000.
    with_gap = [i for i in taken if i != 31_337]
    assert pool.first_free(with_gap) == 31_337
    assert pool.v4_at(31_337) == v4("10.9.122.105")


def test_ipv6_pairs_with_the_same_index() -> None:
    pool = pool_for(["10.8.0.1/24", "fd00:8::1/64"])
    index = pool.first_free([])
    assert index == 2
    assert pool.v4_at(index) == v4("10.8.0.2")
    assert pool.v6_at(index) == ipaddress.IPv6Address("fd00:8::2")
    assert pool.v6_at(200) == ipaddress.IPv6Address("fd00:8::c8")
    assert pool_for(["10.8.0.1/24"]).v6_at(2) is None


def test_ipv6_gateway_index_is_reserved_too() -> None:
    pool = pool_for(["10.8.0.1/24", "fd00:8::5/64"])
    assert not pool.usable(5)
    assert pool.capacity == 252
    assert pool.first_free([2, 3, 4]) == 6


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("10.8.0.0", "network or broadcast"),
        ("10.8.0.255", "network or broadcast"),
        ("10.8.0.1", "own address"),
        ("10.8.1.5", "outside"),
        ("192.168.0.5", "outside"),
    ],
)
def test_index_of_v4_refuses(address: str, message: str) -> None:
    pool = pool_for(["10.8.0.1/24"])
    with pytest.raises(AddressError, match=message):
        pool.index_of_v4(v4(address))


@pytest.mark.parametrize(("address", "index"), [("10.8.0.2", 2), ("10.8.0.254", 254)])
def test_index_of_v4_accepts_hosts(address: str, index: int) -> None:
    pool = pool_for(["10.8.0.1/24"])
    assert pool.index_of_v4(v4(address)) == index
    assert pool.v4_at(index) == v4(address)


@pytest.mark.parametrize(
    ("addresses", "address", "ok"),
    [
        (["10.8.0.1/24", "fd00:8::1/64"], "fd00:8::99", True),
        (["10.8.0.1/24", "fd00:8::1/64"], "fd00:8::1", False),
        (["10.8.0.1/24", "fd00:8::1/64"], "fd00:8::", False),
        (["10.8.0.1/24", "fd00:8::1/64"], "fd00:9::2", False),
        (["10.8.0.1/24"], "fd00:8::2", False),
    ],
)
def test_check_v6(addresses: list[str], address: str, ok: bool) -> None:
    pool = pool_for(addresses)
    if ok:
        pool.check_v6(ipaddress.IPv6Address(address))
    else:
        with pytest.raises(AddressError):
            pool.check_v6(ipaddress.IPv6Address(address))


def test_pool_for_needs_ipv4_and_takes_the_first_of_each_family() -> None:
    with pytest.raises(AddressError, match="IPv4"):
        pool_for(["fd00:8::1/64"])
    pool = pool_for(["fd00:8::1/64", "10.8.0.1/24", "10.9.0.1/24"])
    assert pool == Pool(
        ipaddress.IPv4Interface("10.8.0.1/24"), ipaddress.IPv6Interface("fd00:8::1/64")
    )

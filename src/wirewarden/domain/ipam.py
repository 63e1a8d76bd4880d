"""IP address management: which host address a new peer gets.

A peer is identified inside its interface by a host index: its IPv4 address is
the IPv4 network plus the index, and its IPv6 address (when the interface has an
IPv6 network) the IPv6 network plus the same index, so one integer column with a
unique index is all the store needs to allocate quickly at 50,000 peers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPv4Interface = ipaddress.IPv4Interface
IPv6Interface = ipaddress.IPv6Interface


class AddressError(ValueError):
    """A requested address that can never be given to a peer."""


@dataclass(frozen=True)
class Pool:
    """The host addresses of one interface's IPv4 (and optional IPv6) network."""

    v4: IPv4Interface
    v6: IPv6Interface | None = None

    @property
    def first_index(self) -> int:
        # /31 and /32 have no network or broadcast address to skip.
        return 0 if self.v4.network.prefixlen >= 31 else 1

    @property
    def last_index(self) -> int:
        size = self.v4.network.num_addresses
        return size - 1 if self.v4.network.prefixlen >= 31 else size - 2

    @property
    def reserved(self) -> frozenset[int]:
        indices = {int(self.v4.ip) - int(self.v4.network.network_address)}
        if self.v6 is not None:
            indices.add(int(self.v6.ip) - int(self.v6.network.network_address))
        return frozenset(indices)

    @property
    def capacity(self) -> int:
        span = range(self.first_index, self.last_index + 1)
        return len(span) - sum(1 for i in self.reserved if i in span)

    def v4_at(self, index: int) -> ipaddress.IPv4Address:
        return self.v4.network.network_address + index

    def v6_at(self, index: int) -> ipaddress.IPv6Address | None:
        if self.v6 is None:
            return None
        return self.v6.network.network_address + index

    def index_of_v4(self, address: ipaddress.IPv4Address) -> int:
        if address not in self.v4.network:
            raise AddressError(f"{address} is outside {self.v4.network}")
        index = int(address) - int(self.v4.network.network_address)
        if index < self.first_index or index > self.last_index:
            raise AddressError(f"{address} is the network or broadcast address")
        if index in self.reserved:
            raise AddressError(f"{address} is the interface's own address")
        return index

    def check_v6(self, address: ipaddress.IPv6Address) -> None:
        if self.v6 is None:
            raise AddressError("the interface has no IPv6 network")
        if address not in self.v6.network:
            raise AddressError(f"{address} is outside {self.v6.network}")
        if address in (self.v6.ip, self.v6.network.network_address):
            raise AddressError(f"{address} is the interface's own or network address")

    def usable(self, index: int) -> bool:
        return self.first_index <= index <= self.last_index and index not in self.reserved

    def first_free(self, taken_sorted: Iterable[int]) -> int | None:
        """The lowest usable index not in `taken_sorted` (ascending), or None when full."""
        candidate = self.first_index
        for taken in taken_sorted:
            candidate = self._skip_reserved(candidate)
            if candidate > self.last_index or taken > candidate:
                break
            if taken == candidate:
                candidate += 1
        candidate = self._skip_reserved(candidate)
        return candidate if candidate <= self.last_index else None

    def _skip_reserved(self, index: int) -> int:
        while index in self.reserved:
            index += 1
        return index


def pool_for(addresses: Iterable[str]) -> Pool:
    """Build the pool from an interface's address list ("10.8.0.1/24", "fd00::1/64")."""
    v4: IPv4Interface | None = None
    v6: IPv6Interface | None = None
    for text in addresses:
        iface = ipaddress.ip_interface(text)
        if isinstance(iface, IPv4Interface) and v4 is None:
            v4 = iface
        elif isinstance(iface, IPv6Interface) and v6 is None:
            v6 = iface
    if v4 is None:
        raise AddressError("an interface needs an IPv4 network")
    return Pool(v4, v6)


def next_after(pool: Pool, highest_taken: int | None) -> int | None:
    """The fast path: the first usable index above the highest taken one, or None."""
    index = pool.first_index if highest_taken is None else highest_taken + 1
    index = pool._skip_reserved(index)
    return index if index <= pool.last_index else None

"""Choosing the node a new peer lands on (pure: plain values in, a name out)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Candidate:
    """A node holding one of the tenant's interfaces, as placement sees it."""

    node: str
    region: str
    peers: int
    capacity: int
    online: bool
    drain: bool

    @property
    def load(self) -> Fraction:
        # Exact: 7/20 and 14/40 tie, as they should (floats would split hairs).
        return Fraction(self.peers, max(self.capacity, 1))

    @property
    def full(self) -> bool:
        return self.peers >= self.capacity


def eligible(candidates: Iterable[Candidate], region: str | None) -> list[Candidate]:
    """Online, not draining, in the region when one is asked for."""
    return [
        c for c in candidates if c.online and not c.drain and (region is None or c.region == region)
    ]


def choose(candidates: Iterable[Candidate], region: str | None = None) -> Candidate | None:
    """The least-loaded eligible node; a full one only when every eligible node is full.
    Ties go to the node with more room left, then to the name (stable across replicas)."""
    pool = eligible(candidates, region)
    roomy = [c for c in pool if not c.full]
    pool = roomy or pool
    if not pool:
        return None
    return min(pool, key=lambda c: (c.load, -(c.capacity - c.peers), c.node))

"""The mesh picture of an interface (pure): its gateway in the middle, its peers on a ring
around it, a spoke from each peer to the gateway (every peer's tunnel) and a link between
every two peers that may reach each other (both have mesh on, as the firewall allows).
Positions are in a square of `size` units; the page draws them as SVG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# More peers than this on one picture would be a blur: the rest are counted, not drawn.
MAX_SHOWN = 100


@dataclass(frozen=True)
class PeerDot:
    peer_id: int
    name: str
    mesh: bool
    online: bool


@dataclass(frozen=True)
class Spot:
    peer: PeerDot
    x: float
    y: float


@dataclass(frozen=True)
class MeshMap:
    size: int
    center: float
    spots: tuple[Spot, ...]
    # Pairs of indices into `spots` whose peers may reach each other.
    links: tuple[tuple[int, int], ...]
    hidden: int

    @property
    def radius(self) -> float:
        """A dot's radius: smaller as the ring fills."""
        return max(3.0, min(12.0, 240 / max(1, len(self.spots))))


def layout(peers: Sequence[PeerDot], size: int = 400) -> MeshMap:
    shown = list(peers[:MAX_SHOWN])
    center = size / 2
    ring = size / 2 - 40  # room for the names outside the ring
    spots = []
    for i, peer in enumerate(shown):
        # From the top, clockwise.
        angle = -math.pi / 2 + 2 * math.pi * i / max(1, len(shown))
        x = center + ring * math.cos(angle)
        y = center + ring * math.sin(angle)
        spots.append(Spot(peer, round(x, 1), round(y, 1)))
    meshed = [i for i, s in enumerate(spots) if s.peer.mesh]
    links = tuple((a, b) for n, a in enumerate(meshed) for b in meshed[n + 1 :])
    return MeshMap(size, center, tuple(spots), links, max(0, len(peers) - len(shown)))

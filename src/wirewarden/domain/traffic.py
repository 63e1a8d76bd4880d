"""Traffic arithmetic: counter deltas across resets, time buckets, tiers, steps, billing periods.

Byte directions are the server's, as `wg` reports them: `rx` is what the server received
from the peer (the peer's upload), `tx` what it sent to the peer (the peer's download).
Times are whole seconds since the epoch (UTC).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from wirewarden.domain.state import PeerStats

ONLINE_SECONDS = 180  # a handshake younger than this counts as online
MINUTE, HOUR, DAY = 60, 3600, 86400


class Counters(NamedTuple):
    """The last kernel counters seen for a peer: the baseline of the next delta. (A named
    tuple: the collector makes 10,000 of these a pass, and tuples are cheap to make.)"""

    public_key: str
    rx: int
    tx: int
    handshake: int = 0
    endpoint: str | None = None


def delta(prev: Counters | None, cur: PeerStats, public_key: str) -> tuple[int, int]:
    """Bytes moved since `prev`, never negative and never counted twice.

    A peer seen for the first time (or under a new key) counts from zero: WireGuard starts a
    peer's counters at zero when it is added. Counters that went down mean the peer or its
    device was re-created (interface restart, wireguard-go killed, peer removed and re-added);
    whatever the new counters show was moved since then, so that is the delta.
    """
    if prev is None or prev.public_key != public_key:
        return cur.rx_bytes, cur.tx_bytes
    if cur.rx_bytes < prev.rx or cur.tx_bytes < prev.tx or cur.latest_handshake < prev.handshake:
        return cur.rx_bytes, cur.tx_bytes
    return cur.rx_bytes - prev.rx, cur.tx_bytes - prev.tx


def is_online(handshake: int, now: float) -> bool:
    return handshake > 0 and now - handshake < ONLINE_SECONDS


def floor_to(t: int, step: int) -> int:
    return t // step * step


def ceil_to(t: int, step: int) -> int:
    return -(-t // step) * step


@dataclass(frozen=True)
class Tier:
    """One resolution of the store: rows of `step` seconds, kept `keep` seconds (None: forever)."""

    name: str
    step: int
    keep: int | None


# Finest first. Collection every 10 s is summed into the minute, which keeps an active peer
# at 1,440 raw rows a day (see docs/metrics.md for the bytes).
TIERS = (
    Tier("raw", MINUTE, 2 * DAY),
    Tier("5m", 5 * MINUTE, 35 * DAY),
    Tier("1h", HOUR, 396 * DAY),
    Tier("1d", DAY, None),
)
STEPS = (MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, DAY)
MAX_POINTS = 800  # what a chosen step aims under; an explicit step may ask for up to:
MAX_EXPLICIT_POINTS = 20_000


def choose_step(since: int, until: int, now: int, step: int | None = None) -> int:
    """The step of a series: the given one (rounded up to whole minutes), or the smallest
    standard step giving at most MAX_POINTS points; never finer than the finest tier that
    still holds `since`."""
    if step is None:
        span = max(until - since, 1)
        step = next((s for s in STEPS if span / s <= MAX_POINTS), STEPS[-1])
    step = ceil_to(max(step, MINUTE), MINUTE)
    holding = next(t for t in TIERS if t.keep is None or since >= now - t.keep)
    return ceil_to(step, holding.step)


@dataclass(frozen=True)
class Segment:
    """Read `tier` for rows with lo <= t < hi."""

    tier: Tier
    lo: int
    hi: int


def cover(
    since: int, until: int, watermarks: dict[str, int], tiers: tuple[Tier, ...] = TIERS
) -> list[Segment]:
    """The fewest rows that add up to [since, until): each tier for the whole blocks it
    holds, finer tiers for the edges. `watermarks[tier]` is where that tier's rollup stopped:
    it holds every complete block below it and nothing at or above it. The finest tier is
    always complete. `since` and `until` must be aligned to the finest tier's step."""
    if since >= until or not tiers:
        return []
    *finer, tier = tiers
    if not finer:
        return [Segment(tier, since, until)]
    done = watermarks.get(tier.name, 0)
    lo = ceil_to(since, tier.step)
    hi = min(floor_to(until, tier.step), floor_to(done, tier.step))
    if lo >= hi:
        return cover(since, until, watermarks, tuple(finer))
    return [
        *cover(since, lo, watermarks, tuple(finer)),
        Segment(tier, lo, hi),
        *cover(hi, until, watermarks, tuple(finer)),
    ]


def tiers_for_step(step: int) -> tuple[Tier, ...]:
    """Tiers whose rows each fall inside one bucket of `step`."""
    return tuple(t for t in TIERS if step % t.step == 0)


def epoch(value: datetime) -> int:
    """Seconds since the epoch; a time without a zone is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return calendar.timegm(value.astimezone(UTC).utctimetuple())


_SPAN_UNITS = {"m": MINUTE, "h": HOUR, "d": DAY, "w": 7 * DAY, "y": 365 * DAY}


def parse_span(text: str) -> int:
    """'90m', '24h', '7d', '2w', '1y' -> seconds."""
    text = text.strip().lower()
    unit = _SPAN_UNITS.get(text[-1:]) if text else None
    if unit is None or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise ValueError(f"{text!r} is not a span like 90m, 24h, 7d, 2w or 1y")
    return int(text[:-1]) * unit


def human_bytes(value: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"


def moved(prev: tuple[int, ...] | None, cur: tuple[int, ...]) -> tuple[int, ...]:
    """What running counters (bytes, packets, ...) moved since `prev`: all of `cur` when
    they are new or count again from zero (their set was written anew)."""
    if prev is None or any(c < p for c, p in zip(cur, prev, strict=True)):
        return cur
    return tuple(c - p for c, p in zip(cur, prev, strict=True))

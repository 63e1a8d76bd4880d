"""Traffic arithmetic: counter deltas across resets, tier covers, steps, billing periods."""

from __future__ import annotations

import pytest

from wirewarden.domain.state import PeerStats
from wirewarden.domain.traffic import (
    DAY,
    HOUR,
    TIERS,
    Counters,
    Segment,
    choose_step,
    cover,
    delta,
    is_online,
    tiers_for_step,
)

K, K2 = "key-a", "key-b"


def stats(rx: int, tx: int, handshake: int = 1000) -> PeerStats:
    return PeerStats("203.0.113.9:5000", handshake, rx, tx)


@pytest.mark.parametrize(
    ("prev", "cur", "key", "expected"),
    [
        # first sight of a peer: its counters started at zero when it was added
        (None, stats(500, 700), K, (500, 700)),
        (None, stats(0, 0, 0), K, (0, 0)),
        # steady growth
        (Counters(K, 100, 200, 1000), stats(150, 260), K, (50, 60)),
        # no traffic
        (Counters(K, 100, 200, 1000), stats(100, 200), K, (0, 0)),
        # wireguard-go restarted: both counters back near zero
        (Counters(K, 10_000, 20_000, 1000), stats(300, 400, 1100), K, (300, 400)),
        # only one counter went down: still a reset, never a negative delta
        (Counters(K, 10_000, 20, 1000), stats(50, 900, 1100), K, (50, 900)),
        # counters grew past the old values but the handshake went back to zero: a reset
        (Counters(K, 100, 100, 1000), stats(5000, 6000, 0), K, (5000, 6000)),
        # the peer was re-keyed: a new peer in the kernel, counting from zero
        (Counters(K, 10_000, 20_000, 1000), stats(15_000, 25_000), K2, (15_000, 25_000)),
        # the baseline of a peer that was missing from the kernel is zero
        (Counters(K, 0, 0, 0), stats(42, 43), K, (42, 43)),
    ],
)
def test_delta(prev: Counters | None, cur: PeerStats, key: str, expected: tuple[int, int]) -> None:
    assert delta(prev, cur, key) == expected


def test_a_sequence_with_two_resets_sums_to_what_moved() -> None:
    # (rx counter as the kernel shows it, bytes really moved since the last look)
    seen = [(100, 100), (250, 150), (40, 40), (90, 50), (0, 0), (10, 10), (1010, 1000)]
    prev = None
    total = 0
    for rx, _moved in seen:
        got, _ = delta(prev, stats(rx, 0), K)
        assert got >= 0
        total += got
        prev = Counters(K, rx, 0, 1000)
    assert total == sum(moved for _, moved in seen)


def test_online_means_a_handshake_in_the_last_three_minutes() -> None:
    assert is_online(1000, 1000 + 179)
    assert not is_online(1000, 1000 + 180)
    assert not is_online(0, 5)


def test_cover_takes_whole_blocks_from_coarse_tiers_and_edges_from_fine_ones() -> None:
    raw, m5, h1, d1 = TIERS
    since = 2 * DAY - 2 * HOUR + 120  # 22:02 on day 1
    until = 4 * DAY + 3 * HOUR + 420  # 03:07 on day 4
    marks = {"5m": until - 120, "1h": 4 * DAY + 3 * HOUR, "1d": 4 * DAY}
    segments = cover(since, until, marks)
    assert segments == [
        Segment(raw, since, since + 180),  # 22:02 - 22:05
        Segment(m5, since + 180, 2 * DAY - HOUR),  # 22:05 - 23:00
        Segment(h1, 2 * DAY - HOUR, 2 * DAY),  # 23:00 - 24:00
        Segment(d1, 2 * DAY, 4 * DAY),  # two whole days
        Segment(h1, 4 * DAY, 4 * DAY + 3 * HOUR),
        Segment(m5, 4 * DAY + 3 * HOUR, 4 * DAY + 3 * HOUR + 300),
        Segment(raw, 4 * DAY + 3 * HOUR + 300, until),
    ]
    # the pieces tile the range exactly
    assert sum(s.hi - s.lo for s in segments) == until - since


def test_cover_reads_finer_tiers_above_a_watermark() -> None:
    raw, m5, _, _ = TIERS
    # nothing rolled up yet: everything from raw
    assert cover(0, 7200, {}) == [Segment(raw, 0, 7200)]
    # 5m rolled up to 3600 only
    assert cover(0, 7200, {"5m": 3600}) == [Segment(m5, 0, 3600), Segment(raw, 3600, 7200)]


def test_cover_for_a_step_uses_only_tiers_that_fit_in_its_buckets() -> None:
    assert [t.name for t in tiers_for_step(900)] == ["raw", "5m"]
    assert [t.name for t in tiers_for_step(DAY)] == ["raw", "5m", "1h", "1d"]
    segments = cover(0, 3 * DAY, {"5m": 3 * DAY, "1h": 3 * DAY, "1d": 3 * DAY}, tiers_for_step(900))
    assert [s.tier.name for s in segments] == ["5m"]


@pytest.mark.parametrize(
    ("span", "step", "expected"),
    [
        (HOUR, None, 60),
        (24 * HOUR, None, 300),
        (7 * DAY, None, 900),
        (30 * DAY, None, 3600),
        (365 * DAY, None, DAY),
        (HOUR, 90, 120),  # whole minutes
        (HOUR, 1, 60),
        (30 * DAY, 60, 300),  # raw points are kept 48 h: the 5-minute tier holds 30 days back
        (60 * DAY, 300, 3600),  # the 5-minute tier is kept 35 days
        (400 * DAY, 3600, DAY),
    ],
)
def test_choose_step(span: int, step: int | None, expected: int) -> None:
    now = 1_800_000_000
    assert choose_step(now - span, now, now, step) == expected

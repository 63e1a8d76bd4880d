"""The dump cache: fresh, then stale-while-refreshing, then fetched inline."""

from __future__ import annotations

import threading
import time

from wirewarden.dataplane.stats import DumpCache
from wirewarden.domain.state import DeviceDump


class Dumps:
    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self) -> dict[str, DeviceDump]:
        self.release.wait(5)
        self.calls += 1
        return {f"dump{self.calls}": DeviceDump("k", 1, {}, {})}


def test_fresh_value_is_reused() -> None:
    dumps = Dumps()
    cache = DumpCache(dumps, max_age=60)
    assert cache() is cache()
    assert dumps.calls == 1


def test_stale_value_is_served_while_one_refresh_runs() -> None:
    dumps = Dumps()
    cache = DumpCache(dumps, max_age=0.5, stale_for=60)
    first = cache()
    time.sleep(0.6)
    dumps.release.clear()  # the background dump hangs until released
    assert cache() is first
    assert cache() is first  # still one refresh in flight, not two
    dumps.release.set()
    deadline = time.monotonic() + 5
    while "dump2" not in cache() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "dump2" in cache()
    assert dumps.calls == 2


def test_too_old_or_uncached_is_fetched_inline() -> None:
    dumps = Dumps()
    cache = DumpCache(dumps, max_age=0, stale_for=60)  # max_age 0: always fresh (tests, CLI)
    assert "dump1" in cache()
    assert "dump2" in cache()


def test_a_dump_offered_by_the_pass_is_served_instead_of_taking_one() -> None:
    dumps = Dumps()
    cache = DumpCache(dumps, max_age=2)
    offered = {"wg0": DeviceDump("k", 1, {}, {})}
    cache.offer(offered, time.monotonic(), 1234.5)
    assert cache.timed() == (offered, 1234.5)
    assert cache() is offered
    assert dumps.calls == 0


def test_an_offer_older_than_the_dump_held_is_ignored() -> None:
    dumps = Dumps()
    cache = DumpCache(dumps, max_age=60)
    before = time.monotonic()
    held = cache()
    cache.offer({"old": DeviceDump("k", 1, {}, {})}, before, 1.0)
    assert cache() is held


def test_an_offer_too_old_to_serve_is_taken_again() -> None:
    dumps = Dumps()
    cache = DumpCache(dumps, max_age=2, stale_for=0)
    cache.offer({"old": DeviceDump("k", 1, {}, {})}, time.monotonic() - 3, 1.0)
    found, _ = cache.timed()
    assert "dump1" in found


def test_a_waiter_is_woken_by_the_next_fresh_dump_and_only_by_it() -> None:
    cache = DumpCache(Dumps(), max_age=2)
    cache.offer({"first": DeviceDump("k", 1, {}, {})}, time.monotonic(), 100.0)
    assert not cache.wait_fresh(100.0, 0.05)  # nothing newer than the one used
    assert cache.wait_fresh(99.0, 0)
    offer = threading.Timer(0.1, lambda: cache.offer({}, time.monotonic(), 101.0))
    offer.start()
    started = time.monotonic()
    assert cache.wait_fresh(100.0, 5)
    assert time.monotonic() - started < 2
    offer.join()


def test_a_newer_dump_too_old_to_serve_does_not_wake_a_waiter() -> None:
    cache = DumpCache(Dumps(), max_age=2)
    cache.offer({}, time.monotonic() - 3, 101.0)
    assert not cache.wait_fresh(100.0, 0.05)

"""The sign-in attempt counter (store/throttle.py): windows, lockouts, give-backs, purge."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wirewarden.store import schema, throttle
from wirewarden.store.db import make_engine, make_sessions
from wirewarden.store.tables import LoginThrottle

LIMITS = throttle.Limits(3, window=timedelta(minutes=10), lockout=timedelta(minutes=5))
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    schema.upgrade(engine)
    with make_sessions(engine)() as session:
        yield session
    engine.dispose()


def count(db: Session, at: datetime, key: str = "name:alice") -> datetime | None:
    return throttle.count_attempt(db, key, at, LIMITS)


def test_the_attempt_over_the_limit_starts_the_lockout(db: Session) -> None:
    assert [count(db, T0 + timedelta(seconds=i)) for i in range(3)] == [None] * 3
    assert count(db, T0 + timedelta(seconds=3)) == T0 + timedelta(seconds=3, minutes=5)
    # Attempts during the lockout are counted but do not lengthen it.
    assert count(db, T0 + timedelta(minutes=1)) == T0 + timedelta(seconds=3, minutes=5)
    assert db.scalar(select(LoginThrottle.attempts)) == 5
    assert count(db, T0 + timedelta(minutes=6)) is None  # over: the count starts again
    assert db.scalar(select(LoginThrottle.attempts)) == 1


def test_attempts_outside_the_window_are_forgotten(db: Session) -> None:
    for i in range(3):
        assert count(db, T0 + timedelta(seconds=i)) is None
    assert count(db, T0 + timedelta(minutes=11)) is None
    assert db.scalar(select(LoginThrottle.attempts)) == 1


def test_a_right_password_gives_its_attempt_back(db: Session) -> None:
    for i in range(3):
        count(db, T0 + timedelta(seconds=i))
        throttle.forgive(db, "name:alice")
    assert count(db, T0 + timedelta(seconds=5)) is None
    throttle.clear(db, "name:alice")
    assert db.scalar(select(func.count()).select_from(LoginThrottle)) == 0


def test_keys_are_separate_and_stale_ones_purged(db: Session) -> None:
    for i in range(4):
        count(db, T0, key=f"source:198.51.100.{i}")
    count(db, T0 + timedelta(minutes=9), key="name:bob")
    assert throttle.purge(db, T0 + timedelta(minutes=10), LIMITS) == 4
    assert db.scalars(select(LoginThrottle.key)).all() == ["name:bob"]

"""Counting sign-in attempts per key in one statement (no read-then-write race).

An attempt is counted *before* its password is checked, by an upsert that returns the new
count: of 30 parallel attempts exactly the first `max_attempts` get through, whatever the
timing. The insert-or-update is dialect SQL (ON CONFLICT ... DO UPDATE ... RETURNING, in
SQLite since 3.35 and in PostgreSQL), hence here in the store; the rest is portable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, and_, bindparam, case, delete, or_, update
from sqlalchemy.orm import Session

from wirewarden.store.tables import LoginThrottle, UTCDateTime

KEY_LENGTH = 80


@dataclass(frozen=True)
class Limits:
    max_attempts: int
    window: timedelta  # attempts count within this long of the first
    lockout: timedelta  # a key over max_attempts is refused this long


def throttle_key(kind: str, value: str) -> str:
    # Account names are at most 32 characters and addresses 45: a cut only ever merges
    # over-long garbage names, which name no account.
    return f"{kind}:{value}"[:KEY_LENGTH]


def count_attempt(db: Session, key: str, now: datetime, limits: Limits) -> datetime | None:
    """Count one attempt for `key`; None when it may go ahead, else when its lockout ends.

    A key's count starts again once its window (or its lockout) is over. The attempt that
    goes over `max_attempts` starts the lockout; attempts during it are counted too (the
    count is every attempt made) but do not lengthen it."""
    row = LoginThrottle
    at = bindparam("now", now, type_=UTCDateTime())
    since = bindparam("since", now - limits.window, type_=UTCDateTime())
    locked = row.locked_until.is_not(None)
    fresh = or_(and_(locked, row.locked_until <= at), and_(~locked, row.window_start <= since))
    values: dict[str, Any] = {
        "attempts": case((fresh, 1), else_=row.attempts + 1),
        "window_start": case((fresh, at), else_=row.window_start),
        "locked_until": case(
            (fresh, None),
            (
                and_(~locked, row.attempts + 1 > limits.max_attempts),
                bindparam("until", now + limits.lockout, type_=UTCDateTime()),
            ),
            else_=row.locked_until,
        ),
    }
    first = {"key": key, "attempts": 1, "window_start": now, "locked_until": None}
    # Each dialect's module imported where it is used: the PostgreSQL one alone costs
    # 30 ms of every CLI command's start on SQLite.
    if db.get_bind().dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        lite = sqlite.insert(LoginThrottle).values(first)
        statement: Executable = lite.on_conflict_do_update(
            index_elements=[row.key], set_=values
        ).returning(row.locked_until)
    else:
        from sqlalchemy.dialects import postgresql

        pg = postgresql.insert(LoginThrottle).values(first)
        statement = pg.on_conflict_do_update(index_elements=[row.key], set_=values).returning(
            row.locked_until
        )
    until: datetime | None = db.execute(statement).scalar_one()
    return until if until is not None and until > now else None


def forgive(db: Session, key: str) -> None:
    """Take back one counted attempt that turned out right (a password that matched)."""
    db.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key, LoginThrottle.attempts > 0)
        .values(attempts=LoginThrottle.attempts - 1)
    )


def clear(db: Session, key: str) -> None:
    """Forget the key (its account signed in)."""
    db.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


def purge(db: Session, now: datetime, limits: Limits) -> int:
    """Drop keys whose window and lockout are both over (they would start afresh anyway):
    the table holds only what a spraying attacker sent in the last window."""
    done = db.execute(
        delete(LoginThrottle).where(
            LoginThrottle.window_start <= now - limits.window,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
        )
    )
    return int(done.rowcount)  # type: ignore[attr-defined]

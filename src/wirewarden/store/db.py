"""Engine and sessions; SQLite runs in WAL mode with foreign keys on."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Engine, Table, create_engine, event, insert
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, sessionmaker
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL with NORMAL is durable across process crashes; only a power loss may drop the last commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def engine_of(sessions: sessionmaker[Session]) -> Engine:
    """The engine behind a session factory, for hot reads and bulk writes that skip the ORM."""
    engine: Engine = sessions.kw["bind"]
    return engine


def insert_row(db: Session, row: DeclarativeBase) -> None:
    """INSERT one new ORM object with a single Core statement and adopt it as persistent.

    For a hot path: the unit of work's flush of one new row costs several times the
    statement. Unset columns get their Python-side defaults, on the row and in the object,
    so the object holds exactly what was stored; later changes to it are UPDATEs. A column
    with only a server default is left to the database (and loaded when first read)."""
    table = cast(Table, row.__table__)
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.key in row.__dict__:
            values[column.key] = row.__dict__[column.key]
            continue
        default = column.default
        if column.primary_key or (default is None and column.server_default is not None):
            continue
        value = None
        if isinstance(default, CallableColumnDefault):
            value = default.arg(None)  # type: ignore[arg-type]  # our defaults take no context
        elif isinstance(default, ScalarElementColumnDefault):
            value = default.arg
        setattr(row, column.key, value)
        values[column.key] = value
    keys = [c for c in table.primary_key.columns]
    new = db.connection().execute(insert(table).returning(*keys), values).one()
    for column, value in zip(keys, new, strict=True):
        setattr(row, column.key, value)
    make_transient_to_detached(row)
    db.add(row)

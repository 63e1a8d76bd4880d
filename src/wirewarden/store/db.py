"""Engine and sessions; SQLite runs in WAL mode with foreign keys on.

Write transactions on SQLite need no `BEGIN IMMEDIATE`: pysqlite opens the transaction
right before a session's first INSERT/UPDATE/DELETE (reads before it run outside any
transaction), so the write lock is the first lock the transaction asks for and waits for
it under the busy timeout; there is no read snapshot to upgrade, the case where SQLite
fails at once. Busy errors that outlast the timeout (and PostgreSQL's serialization and
deadlock failures) are retried as whole transactions by `retry_on_busy`.
"""

from __future__ import annotations

import errno
import functools
import logging
import operator
import random
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Table,
    TextClause,
    create_engine,
    event,
    insert,
    make_url,
    text,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, sessionmaker
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

# How long one statement waits for another writer. Writers hold the lock for milliseconds
# (dataplane/lock.py keeps them from waiting on each other): a wait this long means a
# stuck writer, better answered by a retry of the whole transaction than a longer wait.
BUSY_TIMEOUT_S = 10
BUSY_ATTEMPTS = 3
# SQLite primary result codes; PostgreSQL SQLSTATEs (serialization_failure,
# deadlock_detected, lock_not_available; disk_full).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13
_PG_RETRY = frozenset({"40001", "40P01", "55P03"})
_PG_FULL = "53100"


@dataclass(frozen=True)
class PoolOptions:
    """The connection pool of one process (config.py documents the settings).

    serve's threads that use the database at once: the reconciler, the metrics collector,
    the resolver's directory reads and the web requests (FastAPI runs sync routes in a
    pool of 40 threads, but each holds a connection for milliseconds). 5 kept + 10 more
    under a burst fits PostgreSQL's default 100 connections for six replicas."""

    size: int = 5
    max_overflow: int = 10
    # How long a request waits for a free connection before a 503 (not a hang).
    timeout: float = 10.0
    # Connections are replaced after this long: a PostgreSQL restart or failover behind a
    # proxy is not met with a connection that died long ago (pre-ping catches the rest).
    recycle: float = 1800.0
    # How long opening one PostgreSQL connection may take (an unreachable host).
    connect_timeout: int = 5


def make_engine(url: str, pool: PoolOptions | None = None) -> Engine:
    p = pool or PoolOptions()
    parsed = make_url(url)
    sizing: dict[str, Any] = {}
    # An in-memory SQLite lives in one connection: its pool class takes no sizes.
    if parsed.database not in (None, "", ":memory:"):
        sizing = {
            "pool_size": p.size,
            "max_overflow": p.max_overflow,
            "pool_timeout": p.timeout,
            "pool_recycle": p.recycle,
        }
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}, **sizing
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, pool_pre_ping=True, connect_args={"connect_timeout": p.connect_timeout}, **sizing
    )


class DatabaseUnavailable(RuntimeError):
    """No connection could be made within the wait; the message says where and why."""


def wait_for_database(engine: Engine, seconds: float, pause: float = 0.5) -> None:
    """Connect, retrying for `seconds`: a database started beside serve (or restarting)
    gets a moment. Raises DatabaseUnavailable with the last driver error."""
    deadline = time.monotonic() + seconds
    warned = False
    while True:
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return
        except OperationalError as exc:
            lines = str(_driver_error(exc)).strip().splitlines()
            reason = lines[0] if lines else type(exc).__name__
            if time.monotonic() + pause > deadline:
                where = engine.url.render_as_string(hide_password=True)
                raise DatabaseUnavailable(
                    f"cannot connect to {where} (tried for {seconds:g} s): {reason}"
                ) from exc
            if not warned:
                log.warning("database not reachable yet, retrying for %g s: %s", seconds, reason)
                warned = True
            time.sleep(pause)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL with NORMAL is durable across process crashes; only a power loss may drop the last commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
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


class Bulk:
    """One text() statement with named binds, run for many rows (dicts) at once by the
    driver's executemany: compiled once per dialect into that driver's placeholders
    (`?` for SQLite, `%(name)s` for psycopg), so the SQL stays one portable text.

    Not `conn.execute(clause, rows)`: SQLAlchemy's per-row parameter handling costs several
    times the INSERT itself at 10,000 rows (a metrics pass: 65 ms became 220-390 ms).
    A positional driver gets each row's values in the compiled order by one C-level
    itemgetter; a named one takes the dicts as they are.

    `columnar`, for PostgreSQL: the same write as ONE statement over arrays (each bind a
    list of every row's values, spread by `unnest`). 10,000 single-row statements cost the
    server ~1 s a metrics pass even pipelined; one statement of arrays costs it tens of ms.
    SQLite has no arrays and its per-statement cost is a function call, so it keeps the
    row form."""

    def __init__(self, clause: TextClause, columnar: TextClause | None = None) -> None:
        self.clause = clause
        self.columnar = columnar
        self._compiled: dict[str, tuple[str, Callable[[Mapping[str, Any]], Any] | None]] = {}
        self._arrays: dict[str, tuple[str, tuple[str, ...]]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, Callable[[Mapping[str, Any]], Any] | None]:
        key = f"{dialect.name}:{dialect.paramstyle}"
        if key not in self._compiled:
            compiled = self.clause.compile(dialect=dialect)
            order = None
            if compiled.positional:
                names = list(compiled.positiontup or ())
                # itemgetter of one name returns the bare value, not a 1-tuple.
                order = operator.itemgetter(*names) if len(names) > 1 else _one(names[0])
            self._compiled[key] = (compiled.string, order)
        return self._compiled[key]

    def _columnar_for(self, clause: TextClause, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
        key = f"{dialect.name}:{dialect.paramstyle}"
        if key not in self._arrays:
            compiled = clause.compile(dialect=dialect)
            self._arrays[key] = (compiled.string, tuple(compiled.params))
        return self._arrays[key]

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        if self.columnar is not None and conn.dialect.name == "postgresql":
            sql, names = self._columnar_for(self.columnar, conn.dialect)
            conn.exec_driver_sql(sql, {n: [row[n] for row in rows] for n in names})
            return
        sql, order = self._for(conn.dialect)
        params = [order(row) for row in rows] if order else list(rows)
        conn.exec_driver_sql(sql, params)


def bulk_insert(
    table: str,
    binds: Sequence[tuple[str, str, str]],
    exists: tuple[str, str] | None = None,
    tail: str = "",
    cast_rows: bool = True,
) -> Bulk:
    """A Bulk INSERT ... SELECT in both forms from one description: `binds` as (bind name,
    column, SQL type); `exists` (parent table, bind) writes a row only while its parent row
    exists (checked by the statement: one deleted meanwhile loses its own row, not the
    batch); `tail` e.g. an ON CONFLICT clause; `cast_rows=False` leaves the row form's
    binds bare (SQLite gives a cast to a type it does not know, e.g. a timestamp, NUMERIC
    affinity: the date's text would become the number 2026). Built from constants only,
    never input."""
    columns = ", ".join(column for _, column, _ in binds)
    values = ", ".join(f"CAST(:{b} AS {k})" if cast_rows else f":{b}" for b, _, k in binds)
    arrays = ", ".join(f"CAST(:{bind} AS {kind}[])" for bind, _, kind in binds)
    names = ", ".join(bind for bind, _, _ in binds)
    row_where = col_where = ""
    if exists is not None:
        parent, key = exists
        kind = next(k for b, _, k in binds if b == key)
        # An upsert's SELECT needs a WHERE for SQLite's parser anyway.
        probe = f" WHERE EXISTS (SELECT 1 FROM {parent} WHERE id = "  # noqa: S608  (constants)
        row_where = f"{probe}CAST(:{key} AS {kind}))"
        col_where = f"{probe}u.{key})"
    head = f"INSERT INTO {table} ({columns})"
    tail = f" {tail}" if tail else ""
    return Bulk(
        text(f"{head} SELECT {values}{row_where}{tail}"),
        text(f"{head} SELECT * FROM unnest({arrays}) AS u({names}){col_where}{tail}"),  # noqa: S608
    )


def begin_snapshot(db: Session) -> Connection:
    """Start the session's transaction as one snapshot: every later statement in it sees
    the database as of this moment (a reconcile pass reads many tables).

    SQLite: pysqlite opens no transaction for reads, so without an explicit BEGIN each
    statement would see the database as of its own moment; in WAL mode a transaction's
    reads are one snapshot. PostgreSQL: READ COMMITTED (the default) takes a new snapshot
    per statement; REPEATABLE READ keeps the first one for the transaction, and a read-only
    transaction never fails with a serialization error."""
    if db.get_bind().dialect.name == "sqlite":
        conn = db.connection()
        conn.exec_driver_sql("BEGIN")
        return conn
    return db.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def stores_datetime_as_text(dialect: Dialect) -> bool:
    """SQLite keeps a DateTime as text ("2026-01-02 03:04:05.000006", what SQLAlchemy's
    type writes); PostgreSQL as timestamptz, from a datetime. For writes that skip the
    type (Bulk)."""
    return dialect.name == "sqlite"


def _one(name: str) -> Callable[[Mapping[str, Any]], tuple[Any]]:
    return lambda row: (row[name],)


def _driver_error(exc: BaseException) -> BaseException:
    return getattr(exc, "orig", None) or exc  # SQLAlchemy's DBAPIError wraps the driver's


def is_busy(exc: BaseException) -> bool:
    """Another writer held the database too long (or PostgreSQL chose this transaction as
    a serialization or deadlock victim): the whole transaction may simply run again."""
    orig = _driver_error(exc)
    if isinstance(orig, sqlite3.OperationalError):
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
        return "is locked" in str(orig)
    return str(getattr(orig, "sqlstate", None)) in _PG_RETRY


def is_disk_full(exc: BaseException) -> bool:
    orig = _driver_error(exc)
    if isinstance(orig, OSError):
        return orig.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF == _SQLITE_FULL
        return "database or disk is full" in str(orig)
    return str(getattr(orig, "sqlstate", None)) == _PG_FULL


def retry_on_busy(fn: Callable[P, T]) -> Callable[P, T]:
    """Run a function that is one whole transaction (it opens, commits or rolls back its
    own session) again when the database was busy, a few times with a jittered pause;
    the last busy error is raised (the web layer answers it with a 503 and Retry-After)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, BUSY_ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if attempt == BUSY_ATTEMPTS or not is_busy(exc):
                    raise
                log.warning("%s: database busy, attempt %d: %s", fn.__qualname__, attempt, exc)
                time.sleep(random.uniform(0.05, 0.2) * attempt)  # noqa: S311  (jitter)
        raise AssertionError("unreachable")

    return run

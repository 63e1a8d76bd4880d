"""How replicas learn that a node's desired state moved on, and who runs the chores.

A change's transaction names the nodes whose revision it bumped (`notify_node`). On
PostgreSQL that is also a `NOTIFY wirewarden_nodes, '<node>'`, which the database delivers
to every replica's `LISTEN` at commit (and never for a rolled-back change); within one
process the commit hook hands the names over directly. SQLite is one process: the hook
alone. Work that must run once per fleet takes an advisory lock (`Leadership`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, func, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.store.tables import Node

log = logging.getLogger(__name__)

CHANNEL = "wirewarden_nodes"
_PENDING = "wirewarden.bumped"
# pg_try_advisory_lock's key for the once-per-fleet chores ("ww" "ch" in ASCII).
CHORES_LOCK = 0x7777_6368


def revision_of(db: Session | Connection, node: str) -> int:
    """The node's revision now (0: no such node), one indexed read."""
    return db.scalar(select(Node.revision).where(Node.name == node)) or 0


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def notify_node(db: Session, name: str) -> None:
    """Wake the sessions of node `name` once this transaction commits."""
    pending: set[str] = db.info.setdefault(_PENDING, set())
    if name in pending:
        return
    pending.add(name)
    if db.get_bind().dialect.name == "postgresql":
        # On the connection: a session statement would flush pending changes here, where
        # the caller's flush (and its errors) belong at its commit.
        db.connection().execute(select(func.pg_notify(CHANNEL, name)))


class Wakes:
    """Listeners of node names whose state changed, called from any thread."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[Iterable[str]], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[Iterable[str]], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Iterable[str]], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def publish(self, names: Iterable[str]) -> None:
        names = frozenset(names)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(names)
            except Exception:  # one listener's fault must not keep the others uninformed
                log.exception("node wake listener failed")


def watch_commits(sessions: sessionmaker[Session], wakes: Wakes) -> None:
    """Every commit of these sessions that named nodes publishes them."""

    def committed(session: Session) -> None:
        names = session.info.pop(_PENDING, None)
        if names:
            wakes.publish(names)

    def rolled_back(session: Session, *_: Any) -> None:
        session.info.pop(_PENDING, None)

    event.listen(sessions, "after_commit", committed)
    event.listen(sessions, "after_rollback", rolled_back)


class Listener:
    """A thread with its own PostgreSQL connection (a pooled one would lose its LISTEN)
    that publishes the node names NOTIFYed by every replica. It reconnects after a loss,
    and then publishes `everyone` (changes made while it was away have no NOTIFY left)."""

    def __init__(self, url: str, wakes: Wakes, everyone: Callable[[], Iterable[str]]) -> None:
        self.url, self.wakes, self.everyone = url, wakes, everyone
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="node-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _conninfo(self) -> str:
        url = make_url(self.url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def _run(self) -> None:
        import psycopg

        pause, lost = 0.5, False
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo(), autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.ready.set()
                    if lost:
                        self.wakes.publish(self.everyone())
                    pause = 0.5
                    self._drain(conn)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("node change listener lost its connection, retrying: %s", exc)
                lost = True
                self._stop.wait(pause)
                pause = min(pause * 2, 10.0)

    def _drain(self, conn: Any) -> None:
        while not self._stop.is_set():
            batch: set[str] = set()
            # A burst of NOTIFYs (a plan change bumps every node) arrives as one batch.
            for notice in conn.notifies(timeout=0.5):
                batch.add(notice.payload)
                if len(batch) >= 1000:
                    break
            if batch:
                self.wakes.publish(batch)


class Leadership:
    """Whether this replica runs the once-per-fleet chores now: the holder of a session
    advisory lock on PostgreSQL (released by the database if this replica dies), always
    on SQLite (one process)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None

    def held(self) -> bool:
        if not is_postgresql(self.engine):
            return True
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql("SELECT 1")
                return True
            except Exception:
                self.release()
        conn = self.engine.connect()
        try:
            got = conn.scalar(select(func.pg_try_advisory_lock(CHORES_LOCK)))
            conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # the server ends the session, and with it the lock
            finally:
                conn.close()


# pg_advisory_lock's key for placements ("ww" "pl").
PLACEMENT_LOCK = 0x7777_706C


class PlacementLock:
    """Placements one at a time, fleet-wide, from choosing a node to the new peer's commit:
    two never count the same free room. A session advisory lock on a connection of its own
    on PostgreSQL (the peer is written on another, which must not wait on this one's row
    locks); a process lock on SQLite (one process, whose writes take turns anyway)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        if not is_postgresql(self.engine):
            with self._local:
                yield
            return
        with self.engine.connect() as conn:
            conn.execute(select(func.pg_advisory_lock(PLACEMENT_LOCK)))
            conn.commit()
            try:
                yield
            finally:
                conn.execute(select(func.pg_advisory_unlock(PLACEMENT_LOCK)))
                conn.commit()

"""Copying a whole database into another (SQLite to PostgreSQL, when one node becomes a
fleet's control plane).

Every table of the schema in dependency order (parents before children), through
SQLAlchemy Core on both sides, so each column's type converts itself (SQLite's text
timestamps become timestamptz, 0/1 become booleans); sealed columns are bytes and go as
they are, still encrypted with the same master key. The whole copy is one transaction on
the target: a failure leaves it as empty as it was. Afterwards each id sequence is set
past the highest copied id, and every table's row count is compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Integer, Table, func, select, text

from wirewarden.store import schema
from wirewarden.store.tables import Base

CHUNK = 1000
# table name, rows copied so far, rows in all
Progress = Callable[[str, int, int], None]


class CopyError(RuntimeError):
    """The copy cannot start or did not come out whole (the message says which table)."""


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def tables() -> list[Table]:
    """The schema's tables, each after every table it refers to."""
    return list(Base.metadata.sorted_tables)


def counts(conn: Connection) -> dict[str, int]:
    return {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in tables()}


def copy_database(source: Engine, target: Engine, progress: Progress | None = None) -> CopyReport:
    head = schema.head_revision()
    if schema.current_revision(source) != head:
        raise CopyError(
            "the source database is not at the newest schema: start this version once "
            "(any wirewarden command upgrades it), then copy"
        )
    schema.upgrade(target)
    with source.connect() as src:
        wanted = counts(src)
        with target.begin() as dst:
            filled = {name: n for name, n in counts(dst).items() if n}
            if filled:
                listed = ", ".join(f"{name} ({n})" for name, n in sorted(filled.items()))
                raise CopyError(f"the target database is not empty: {listed}")
            for table in tables():
                _copy_table(src, dst, table, wanted[table.name], progress)
                reset_sequence(dst, table)
    with target.connect() as dst:
        got = counts(dst)
    wrong = [f"{n}: {wanted[n]} rows, copied {got[n]}" for n in wanted if wanted[n] != got[n]]
    if wrong:
        raise CopyError("row counts differ after the copy: " + "; ".join(wrong))
    return CopyReport(got)


def _copy_table(
    src: Connection, dst: Connection, table: Table, total: int, progress: Progress | None
) -> None:
    done = 0
    if progress:
        progress(table.name, 0, total)
    # Ordered by the key: the same rows in the same order on a rerun, and ids kept as they are.
    query = select(table).order_by(*table.primary_key.columns)
    result = src.execution_options(stream_results=True, yield_per=CHUNK).execute(query)
    for chunk in result.mappings().partitions(CHUNK):
        dst.execute(table.insert(), [dict(row) for row in chunk])
        done += len(chunk)
        if progress:
            progress(table.name, done, total)


def reset_sequence(conn: Connection, table: Table) -> None:
    """Point a table's id sequence past its highest id, so the next insert does not take a
    copied id. PostgreSQL only: SQLite takes the next rowid from the table itself."""
    if conn.dialect.name != "postgresql":
        return
    keys = list(table.primary_key.columns)
    if len(keys) != 1 or not isinstance(keys[0].type, Integer) or not keys[0].autoincrement:
        return
    column = keys[0]
    sequence = conn.scalar(
        text("SELECT pg_get_serial_sequence(:table, :column)"),
        {"table": table.name, "column": column.name},
    )
    if sequence is None:  # not a serial column after all (a plain integer key)
        return
    highest = conn.scalar(select(func.max(column))) or 0
    # is_called false: the next value handed out is exactly highest + 1.
    conn.execute(
        text("SELECT setval(CAST(:seq AS regclass), :next, false)"),
        {"seq": sequence, "next": highest + 1},
    )

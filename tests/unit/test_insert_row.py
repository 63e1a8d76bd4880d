"""store.db.insert_row: one INSERT, the defaults in row and object, later changes UPDATE."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, String, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from wirewarden.store.db import insert_row, make_engine

STAMP = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "things"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), default="plain")
    made: Mapped[datetime] = mapped_column(default=lambda: STAMP)
    note: Mapped[str | None] = mapped_column(String(16))
    server: Mapped[str] = mapped_column(String(16), server_default="from-db")


@pytest.fixture
def engine(request: pytest.FixtureRequest, database: str) -> Iterator[Engine]:
    """An in-memory SQLite, then a fresh PostgreSQL database (tests/conftest.py)."""
    url = "sqlite://" if database == "sqlite" else request.getfixturevalue("empty_pg_database")
    made = make_engine(url)
    Base.metadata.create_all(made)
    yield made
    made.dispose()


def test_one_insert_with_defaults_then_changes_are_updates(engine: Engine) -> None:
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0]))
    with Session(engine) as db:
        thing = Thing(name="a", note=None)
        insert_row(db, thing)
        assert statements == ["INSERT"]
        assert (thing.id, thing.kind, thing.made.replace(tzinfo=UTC)) == (1, "plain", STAMP)
        assert thing.server == "from-db"  # left to the database, read when asked for
        thing.note = "changed"
        db.commit()
    assert [s for s in statements if s != "SELECT"] == ["INSERT", "UPDATE"]
    with Session(engine) as db:
        row = db.scalars(select(Thing)).one()
        assert (row.name, row.kind, row.note, row.server) == ("a", "plain", "changed", "from-db")

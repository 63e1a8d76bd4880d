"""The Alembic chain on both databases: upgrade to head, down to base, up again, ending
exactly at the tables the code declares; and the files named in chain order.

Revision ids are historical (the id in 0002_policy.py is "0004_policy", and so on):
stored databases name them in alembic_version, so files were renamed, ids never. A new
migration takes the next file number, whatever id it has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from wirewarden.store import schema
from wirewarden.store.db import make_engine
from wirewarden.store.tables import Base


@pytest.fixture
def empty(request: pytest.FixtureRequest, database: str, tmp_path: Path) -> Iterator[Engine]:
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        url = request.getfixturevalue("empty_pg_database")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _migrate(engine: Engine, *steps: tuple[str, str]) -> None:
    cfg = schema.alembic_config()
    for direction, target in steps:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, direction)(cfg, target)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(empty: Engine) -> None:
    _migrate(empty, ("upgrade", "head"))
    assert _tables(empty) == set(Base.metadata.tables)
    _migrate(empty, ("downgrade", "base"))
    assert _tables(empty) == set()
    _migrate(empty, ("upgrade", "head"))
    assert schema.current_revision(empty) == schema.head_revision()
    with empty.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_files_are_named_in_chain_order() -> None:
    script = ScriptDirectory.from_config(schema.alembic_config())
    chain = list(reversed(list(script.walk_revisions())))  # base first
    names = [Path(rev.path).name for rev in chain]
    assert names == sorted(names)
    assert [name[:4] for name in names] == [f"{i:04d}" for i in range(1, len(names) + 1)]


def test_the_quick_head_check_names_alembics_head() -> None:
    """upgrade() skips Alembic when the stored revision is the files' head: that head must
    be the one Alembic would upgrade to."""
    from wirewarden.store import schema

    assert schema._newest_file() == schema.head_revision()

"""Bringing a database to the newest schema, and telling which schema a file has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_ASSIGNED = re.compile(r'^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:"([^"]*)"|None)', re.M)


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


# pg_advisory_xact_lock key of the schema upgrade (any constant no other lock uses).
MIGRATION_LOCK = 0x77770001


def upgrade(engine: Engine) -> None:
    # Every CLI command opens the database: when it is at head already, a look at the
    # version table spares loading Alembic (a third of a second).
    if _stored(engine) == _newest_file():
        return
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as connection:
        _one_migrator(connection)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def _one_migrator(connection: Connection) -> None:
    """Control-plane replicas starting together on PostgreSQL: one upgrades, the others
    wait for its commit and then find the schema at head. (SQLite: one process writes at
    a time anyway.) Released with the transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def _stored(engine: Engine) -> str | None:
    """The version table's one revision (None: no table yet, or not one row)."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def _newest_file() -> str | None:
    """The one revision of the migration files no other follows (None when that is not
    one: Alembic then decides)."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for name, value in _ASSIGNED.findall(path.read_text()):
            (revisions if name == "revision" else followed).add(value)
    heads = revisions - followed
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def head_revision() -> str | None:
    """The newest migration this version knows (what `upgrade` brings a database to)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()

"""Bringing a database to the newest schema, and telling which schema a file has."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


# pg_advisory_xact_lock key of the schema upgrade (any constant no other lock uses).
MIGRATION_LOCK = 0x77770001


def upgrade(engine: Engine) -> None:
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


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def head_revision() -> str | None:
    """The newest migration this version knows (what `upgrade` brings a database to)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()

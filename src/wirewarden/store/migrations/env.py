"""Alembic environment: runs on the connection the caller passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from wirewarden.store.tables import Base

config = context.config
target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite needs table rebuilds for most ALTERs; on PostgreSQL a batch (recreate="auto")
        # is the plain ALTER statements, so one migration file serves both.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        run(conn)

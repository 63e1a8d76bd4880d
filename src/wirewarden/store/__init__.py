"""Persistence: SQLAlchemy 2 tables, Alembic migrations, the secrets vault."""

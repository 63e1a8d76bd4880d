"""Fixtures every suite may use: the database each store and API test runs on.

`database_url` is parametrised over SQLite and PostgreSQL, so a test that asks for it (or
for a fixture built on it, like the API suite's `container`) runs once on each. The
PostgreSQL run needs root and the postgres binaries (CI has both); without them it is
skipped with the reason, and the SQLite run stays.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg

DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test starts from a copy (running the
    migrations again cost a quarter of a second per test)."""
    from wirewarden.store import schema
    from wirewarden.store.db import make_engine

    path = tmp_path_factory.mktemp("sqlite-template") / "wirewarden.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        schema.upgrade(engine)
        with engine.connect() as conn:  # fold the WAL into the file before it is copied
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    """Started the first time a test asks for PostgreSQL; stopped and removed at the end
    of the session, whatever the tests did."""
    reason = pg.unavailable()
    if reason:
        pytest.skip(reason)
    cluster = pg.Cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: pg.Cluster) -> str:
    """A database migrated to head once, the template of every test's own."""
    from wirewarden.store import schema
    from wirewarden.store.db import make_engine

    name = pg_cluster.create_database()
    engine = make_engine(pg_cluster.url(name))
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()  # a template must have no connections when it is copied
    return name


@pytest.fixture
def pg_database(request: pytest.FixtureRequest, pg_cluster: pg.Cluster) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database with the schema at head, dropped after."""
    template = request.getfixturevalue("pg_template")
    name = pg_cluster.create_database(template)
    try:
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def empty_pg_database(pg_cluster: pg.Cluster) -> Iterator[str]:
    """A PostgreSQL database with no schema at all (for migration tests)."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    """Which database this run of the test is on: "sqlite" or "postgresql"."""
    kind: str = request.param
    marker = request.node.get_closest_marker("sqlite_only")
    if kind == "postgresql" and marker is not None:
        pytest.skip(f"SQLite only: {marker.args[0] if marker.args else 'SQLite feature'}")
    return kind


@pytest.fixture
def database_url(request: pytest.FixtureRequest, database: str, tmp_path: Path) -> str | None:
    """The WIREWARDEN_DATABASE_URL of this run, for a data dir at `tmp_path / "data"`: None
    on SQLite (the default file in the data dir, here already a migrated copy, 0600 as
    bootstrap makes it), a fresh migrated database on PostgreSQL."""
    if database == "sqlite":
        data = tmp_path / "data"
        data.mkdir(mode=0o700, exist_ok=True)
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, data / "wirewarden.db")
        (data / "wirewarden.db").chmod(0o600)
        return None
    url: str = request.getfixturevalue("pg_database")
    return url

"""`wirewarden db copy --to URL`: a SQLite install into an empty PostgreSQL database, whole
and usable (needs the test cluster: root and the postgres binaries)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.api.conftest import PASSWORD, build_fast
from wirewarden.cli.db import db_app
from wirewarden.cli.main import app
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import InterfaceCreate, PeerCreate
from wirewarden.store.tables import Interface


def copy(to: str) -> tuple[int, str]:
    if not any(group.name == "db" for group in app.registered_groups):
        app.add_typer(db_app, name="db")
    result = CliRunner().invoke(app, ["db", "copy", "--to", to])
    return result.exit_code, result.output


def test_copy_sqlite_to_postgresql(
    tmp_path: Path, empty_pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("WIREWARDEN_DATA_DIR", str(data))
    monkeypatch.setenv("WIREWARDEN_PUBLIC_HOST", "vpn.example.test")
    monkeypatch.delenv("WIREWARDEN_DATABASE_URL", raising=False)
    src = build_fast(Settings(data_dir=data), dataplane=FakeDataplane(), stats_max_age=0)
    src.interfaces.create(InterfaceCreate(name="wg0", address="10.8.0.1/24"), SYSTEM)
    peers = [src.peers.create("wg0", PeerCreate(name=f"p{i}"), SYSTEM) for i in range(3)]
    src.users.create(UserCreate(name="alice", role="member", password=PASSWORD), SYSTEM)
    src.tokens.create("ci", ["read"], SYSTEM)
    configs = {p.id: src.peers.config(p.id)[0] for p in peers}
    src.engine.dispose()

    code, out = copy(empty_pg_database)
    assert code == 0, out
    assert "row counts match" in out and "peers" in out

    dst = build_fast(
        Settings(data_dir=data, database_url=empty_pg_database),
        dataplane=FakeDataplane(),
        stats_max_age=0,
    )
    try:
        # Sealed keys came over as they were and open with the same master key.
        assert {pid: dst.peers.config(pid)[0] for pid in configs} == configs
        assert dst.auth.login("alice", PASSWORD, "test").status == "ok"
        # Sequences were set past the copied ids: new rows get new ids.
        after = dst.peers.create("wg0", PeerCreate(name="after"), SYSTEM)
        assert after.id == max(configs) + 1
        with dst.deps.sessions() as db:
            assert db.scalars(select(Interface.name)).all() == ["wg0"]
    finally:
        dst.engine.dispose()

    code, out = copy(empty_pg_database)  # a second copy would mix two installs
    assert code == 1 and "not empty" in out

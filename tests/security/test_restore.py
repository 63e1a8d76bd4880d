"""`restore` must check a backup completely before it changes anything, and never run
under a live `serve`: a refused restore leaves the database opening with its peers and
the master key as it was."""

from __future__ import annotations

import base64
import io
import sqlite3
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wirewarden.bootstrap import Container
from wirewarden.cli import main as cli_main
from wirewarden.config import Settings
from wirewarden.services import backup as backups
from wirewarden.services.context import SYSTEM
from wirewarden.services.errors import ServiceError
from wirewarden.services.schemas import InterfaceCreate, PeerCreate

pytestmark = pytest.mark.sqlite_only(
    "backup and restore copy the SQLite file; PostgreSQL has pg_dump"
)


@pytest.fixture
def installed(container: Container) -> Container:
    container.interfaces.create(InterfaceCreate(name="wg0", address="10.8.0.1/24"), SYSTEM)
    for name in ("laptop", "phone"):
        container.peers.create("wg0", PeerCreate(name=name), SYSTEM)
    return container


def _archive(container: Container, target: Path) -> Path:
    s = container.settings
    backups.backup(s.db_url, s.master_key_path, target)
    return target


def _doctored(source: Path, target: Path, **replace: bytes) -> Path:
    """A copy of a backup with members replaced (names with . spelt _)."""
    wanted = {k.replace("_", "."): v for k, v in replace.items()}
    with tarfile.open(source) as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            handle = src.extractfile(member)
            assert handle is not None
            data = wanted.get(member.name, handle.read())
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return target


def _assert_untouched(container: Container, key_before: bytes) -> None:
    s = container.settings
    assert s.master_key_path.read_bytes() == key_before
    with sqlite3.connect(s.data_dir / "wirewarden.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # The install still opens and its secrets still open with its key.
    peers = container.peers.list("wg0")
    assert sorted(p.name for p in peers.items) == ["laptop", "phone"]
    assert "PrivateKey" in container.peers.config(peers.items[0].id)[0]


def _refused(container: Container, archive: Path) -> ServiceError:
    s = container.settings
    container.engine.dispose()  # the CLI runs in a process of its own
    with pytest.raises(ServiceError) as raised:
        backups.restore(s.db_url, s.master_key_path, archive, s.data_dir)
    return raised.value


def test_a_garbage_database_is_refused_and_the_install_survives(
    installed: Container, tmp_path: Path
) -> None:
    good = _archive(installed, tmp_path / "good.tar.gz")
    bad = _doctored(good, tmp_path / "bad.tar.gz", wirewarden_db=b"garbage " * 4096)
    key_before = installed.settings.master_key_path.read_bytes()
    error = _refused(installed, bad)
    assert error.status == 422
    _assert_untouched(installed, key_before)


@pytest.mark.parametrize(
    "key",
    [b"not base64 at all!\n", base64.b64encode(b"k" * 32) + b"\n"],
    ids=["not-base64", "wrong-key"],
)
def test_a_key_that_does_not_open_the_secrets_is_refused(
    installed: Container, tmp_path: Path, key: bytes
) -> None:
    good = _archive(installed, tmp_path / "good.tar.gz")
    bad = _doctored(good, tmp_path / "bad.tar.gz", master_key=key)
    key_before = installed.settings.master_key_path.read_bytes()
    error = _refused(installed, bad)
    assert "key" in error.message
    _assert_untouched(installed, key_before)


def test_restore_is_refused_while_serve_holds_the_data_dir(
    installed: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backup from before a third peer: restoring it under serve would lose that peer.
    s = installed.settings
    old = _archive(installed, tmp_path / "old.tar.gz")
    installed.peers.create("wg0", PeerCreate(name="tablet"), SYSTEM)
    key_before = s.master_key_path.read_bytes()
    seen: list[ServiceError] = []

    def serving(_cfg: Settings) -> None:
        # Inside `wirewarden serve`, where uvicorn would run: restore now.
        try:
            backups.restore(s.db_url, s.master_key_path, old, s.data_dir)
        except ServiceError as exc:
            seen.append(exc)

    monkeypatch.setattr(cli_main, "_serve", serving)
    monkeypatch.setenv("WIREWARDEN_DATA_DIR", str(s.data_dir))
    result = CliRunner().invoke(cli_main.app, ["serve"])
    assert result.exit_code == 0, result.output
    assert len(seen) == 1 and "serve" in seen[0].message
    assert [p.name for p in installed.peers.list("wg0").items] == ["laptop", "phone", "tablet"]
    assert s.master_key_path.read_bytes() == key_before


def test_backup_members_are_private(installed: Container, tmp_path: Path) -> None:
    archive = _archive(installed, tmp_path / "backup.tar.gz")
    with tarfile.open(archive) as tar:
        assert {m.name: m.mode & 0o777 for m in tar.getmembers()} == {
            "manifest.json": 0o600,
            "wirewarden.db": 0o600,
            "master.key": 0o600,
        }


def test_a_good_backup_still_restores_over_an_install(installed: Container, tmp_path: Path) -> None:
    s = installed.settings
    old = _archive(installed, tmp_path / "old.tar.gz")
    installed.peers.create("wg0", PeerCreate(name="tablet"), SYSTEM)
    installed.engine.dispose()
    backups.restore(s.db_url, s.master_key_path, old, s.data_dir)
    assert [p.name for p in installed.peers.list("wg0").items] == ["laptop", "phone"]
    assert not list(s.data_dir.glob(".restore-*")) and not list(s.data_dir.glob(".master.key.*"))

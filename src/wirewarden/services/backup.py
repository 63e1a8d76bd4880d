"""Backups: a consistent SQLite snapshot plus the master key, in one 0600 tar.gz."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from wirewarden import __version__
from wirewarden.services.errors import Conflict, Invalid
from wirewarden.store import schema
from wirewarden.store.db import make_engine

MANIFEST = "manifest.json"
DB_NAME = "wirewarden.db"
KEY_NAME = "master.key"


def sqlite_path(url: str) -> Path:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise Invalid(
            "backup and restore handle the SQLite database; use pg_dump for PostgreSQL",
            "database_url",
        )
    return Path(parsed.database)


def backup(db_url: str, key_path: Path, target: Path) -> dict[str, str | None]:
    source = sqlite_path(db_url)
    engine = make_engine(db_url)
    manifest = {
        "format": "wirewarden-backup/1",
        "version": __version__,
        "schema": schema.current_revision(engine),
        "created_at": datetime.now(UTC).isoformat(),
    }
    engine.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = Path(tmp) / DB_NAME
        # The online backup API copies a consistent state while serve keeps writing.
        with sqlite3.connect(source) as src, sqlite3.connect(snapshot) as dst:
            src.backup(dst)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w:gz") as tar:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
            tar.add(snapshot, DB_NAME)
            tar.add(key_path, KEY_NAME)
    return manifest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o600
    tar.addfile(info, io.BytesIO(data))


def restore(db_url: str, key_path: Path, archive: Path) -> dict[str, str | None]:
    """Replace the database and master key with the backup's; serve must be stopped."""
    target = sqlite_path(db_url)
    with tarfile.open(archive, "r:gz") as tar, tempfile.TemporaryDirectory() as tmp:
        names = set(tar.getnames())
        if not {MANIFEST, DB_NAME, KEY_NAME} <= names:
            raise Invalid("not a WireWarden backup (manifest, database or key missing)", "file")
        tar.extractall(
            tmp, members=[tar.getmember(n) for n in (MANIFEST, DB_NAME, KEY_NAME)], filter="data"
        )
        manifest: dict[str, str | None] = json.loads((Path(tmp) / MANIFEST).read_text())
        revision = manifest.get("schema")
        if revision is not None and revision not in schema.known_revisions():
            raise Conflict(
                f"the backup's schema {revision} is newer than this WireWarden: upgrade first",
                "schema",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in (
            target.with_name(target.name + "-wal"),
            target.with_name(target.name + "-shm"),
        ):
            stale.unlink(missing_ok=True)
        shutil.copyfile(Path(tmp) / DB_NAME, target)
        shutil.copyfile(Path(tmp) / KEY_NAME, key_path)
        os.chmod(target, 0o600)
        os.chmod(key_path, 0o600)
    engine = make_engine(db_url)
    schema.upgrade(engine)  # an older backup comes up to the current schema
    engine.dispose()
    return manifest

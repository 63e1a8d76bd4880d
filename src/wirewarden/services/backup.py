"""Backups: a consistent SQLite snapshot plus the master key, in one 0600 tar.gz.

A restore changes nothing of the install until the backup has passed every check: it is
unpacked into a staging directory inside the data dir (same file system, so the swap is a
rename), the database must pass `PRAGMA integrity_check`, carry a schema this WireWarden
knows (and is brought up to the current one there), and every secret stored in it must open
with the backup's master key. Only then are the database and the key renamed into place,
and only while no `serve` holds the data dir (its writes after the swap would be lost and
its reconciler would remove the peers they added as zombies)."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from wirewarden import __version__
from wirewarden.services.errors import Conflict, Invalid
from wirewarden.store import schema
from wirewarden.store.datalock import DataDirBusy, DataDirLock
from wirewarden.store.db import make_engine
from wirewarden.store.tables import Base
from wirewarden.store.vault import Vault, VaultError, decode_key

MANIFEST = "manifest.json"
DB_NAME = "wirewarden.db"
KEY_NAME = "master.key"
FORMAT = "wirewarden-backup/1"
# A manifest or a key file is a few hundred bytes; anything far larger is not ours.
SMALL_MEMBER = 64 * 1024
SEALED_SUFFIX = "_enc"  # columns sealed by the vault (store/vault.py) end so


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
        "format": FORMAT,
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
            _add_file(tar, snapshot, DB_NAME)
            _add_file(tar, key_path, KEY_NAME)
    return manifest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o600
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, path: Path, name: str) -> None:
    # Members say 0600 whatever the umask gave the snapshot: a tool that extracts the
    # archive by hand must not leave the key or the database readable by others.
    info = tar.gettarinfo(path, name)
    info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
    with path.open("rb") as handle:
        tar.addfile(info, handle)


def restore(
    db_url: str,
    key_path: Path,
    archive: Path,
    data_dir: Path | None = None,
    env_key: str | None = None,
) -> dict[str, str | None]:
    """Replace the database and master key with the backup's, all or nothing.

    `data_dir` is where serve's lock lives (default: the key's directory); `env_key` the
    master key given by the environment, which then must be the backup's."""
    target = sqlite_path(db_url)
    lock = DataDirLock(data_dir or key_path.parent)
    try:
        lock.acquire()
    except DataDirBusy as exc:
        raise Conflict(str(exc), "data_dir") from exc
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=target.parent))
        try:
            manifest, key_text = _unpack(archive, staging)
            vault = _check_key(key_text, env_key)
            _check_database(staging / DB_NAME, vault)
            _swap(staging, target, key_path, key_text)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        lock.release()
    return manifest


# ---- checks (on the staged copy; the install is untouched until _swap)


def _unpack(archive: Path, staging: Path) -> tuple[dict[str, str | None], str]:
    """The manifest and the key text; the database written to staging (0600)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            if not {MANIFEST, DB_NAME, KEY_NAME} <= members.keys():
                raise Invalid("not a WireWarden backup (manifest, database or key missing)", "file")
            for name in (MANIFEST, DB_NAME, KEY_NAME):
                if not members[name].isfile():
                    raise Invalid(f"not a WireWarden backup ({name} is not a file)", "file")
            manifest_raw = _small(tar, members[MANIFEST])
            key_raw = _small(tar, members[KEY_NAME])
            with _member(tar, members[DB_NAME]) as src:
                fd = os.open(staging / DB_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise Invalid(f"not a readable backup archive: {exc}", "file") from exc
    try:
        manifest = json.loads(manifest_raw)
        key_text = key_raw.decode("ascii")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"the backup's manifest or key is damaged: {exc}", "file") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise Invalid("not a WireWarden backup (unknown manifest format)", "file")
    revision = manifest.get("schema")
    if revision is not None and revision not in schema.known_revisions():
        raise Conflict(
            f"the backup's schema {revision} is newer than this WireWarden: upgrade first",
            "schema",
        )
    return manifest, key_text


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = tar.extractfile(member)
    if handle is None:
        raise Invalid(f"not a WireWarden backup ({member.name} is not a file)", "file")
    return handle


def _small(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if member.size > SMALL_MEMBER:
        raise Invalid(f"not a WireWarden backup ({member.name} is too large)", "file")
    with _member(tar, member) as handle:
        return handle.read()


def _check_key(key_text: str, env_key: str | None) -> Vault:
    try:
        key = decode_key(key_text)
    except VaultError as exc:
        raise Invalid(f"the backup's master key is unusable: {exc}", "file") from exc
    if env_key is not None:
        try:
            same = decode_key(env_key) == key
        except VaultError:
            same = False
        if not same:
            raise Conflict(
                "WIREWARDEN_MASTER_KEY is set and is not the backup's master key: the restored "
                "secrets would not open; unset it or set it to the backup's key",
                "master_key",
            )
    return Vault(key)


def _check_database(path: Path, vault: Vault) -> None:
    try:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        raise Invalid(f"the backup's database is not a usable SQLite file: {exc}", "file") from exc
    if result != ["ok"]:
        raise Invalid(f"the backup's database is damaged: {'; '.join(result[:3])}", "file")
    engine = make_engine(f"sqlite:///{path}")
    try:
        revision = schema.current_revision(engine)
        if revision is None:
            raise Invalid("the backup's database holds no WireWarden schema", "file")
        if revision not in schema.known_revisions():
            raise Conflict(
                f"the backup's schema {revision} is newer than this WireWarden: upgrade first",
                "schema",
            )
        schema.upgrade(engine)  # an older backup comes up to the current schema, here
        _check_secrets(engine, vault)
        with engine.connect() as conn:
            # One self-contained file to rename into place: no -wal beside it.
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
    except SQLAlchemyError as exc:
        raise Invalid(f"the backup's database cannot be used: {exc}", "file") from exc
    finally:
        engine.dispose()


def _check_secrets(engine: Engine, vault: Vault) -> None:
    """Every sealed column of every row opens with the backup's key."""
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if not column.name.endswith(SEALED_SUFFIX):
                    continue
                for (blob,) in conn.execute(select(column).where(column.is_not(None))):
                    try:
                        vault.decrypt(blob)
                    except VaultError as exc:
                        raise Invalid(
                            f"the backup's master key does not open {table.name}.{column.name}",
                            "file",
                        ) from exc


# ---- the swap


def _swap(staging: Path, target: Path, key_path: Path, key_text: str) -> None:
    """Rename the checked database and key into place; on a failure between the two
    renames the old database goes back."""
    fd, key_tmp_name = tempfile.mkstemp(prefix=".master.key.", dir=key_path.parent)
    key_tmp = Path(key_tmp_name)
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600
            handle.write(key_text.strip() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        old_db = staging / "previous.db"
        if target.exists():
            _checkpoint(target)  # its WAL's commits into the file we keep as the fallback
            os.link(target, old_db)
        for suffix in ("-wal", "-shm"):  # an old WAL would be replayed onto the new file
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        os.replace(staging / DB_NAME, target)
        try:
            os.replace(key_tmp, key_path)
        except OSError:
            if old_db.exists():
                os.replace(old_db, target)
            raise
        _fsync_dir(target.parent)
        if key_path.parent != target.parent:
            _fsync_dir(key_path.parent)
    finally:
        key_tmp.unlink(missing_ok=True)


def _checkpoint(path: Path) -> None:
    try:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.DatabaseError:
        pass  # a damaged install is being replaced: nothing of its WAL to save


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

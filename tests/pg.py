"""A private PostgreSQL 15 cluster for tests (DESIGN.md §3): one per test session, reached
over a Unix socket in its own directory, gone at the end even when tests fail.

Each test gets a database of its own, copied from a template that already holds the
migrated schema: `CREATE DATABASE ... TEMPLATE` is a file copy of a few MB, far cheaper
than running every migration again.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.ports import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"
# Durability means nothing for a throwaway cluster; without it CREATE DATABASE and every
# commit skip their fsyncs.
FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def unavailable() -> str | None:
    """Why no cluster can start here, or None."""
    if os.geteuid() != 0:
        return "PostgreSQL tests start a private cluster as the postgres user: run as root"
    if not (BIN / "initdb").exists():
        return f"PostgreSQL 15 is not installed ({BIN}/initdb missing: apt install postgresql)"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return "no postgres system user (apt install postgresql)"
    return None


def _as_postgres(*argv: str) -> None:
    subprocess.run(
        ["runuser", "-u", USER, "--", *argv],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
    )


# Run beside the tests in a session of its own: once the test process is gone, however it
# ended (a kill, a CI timeout: no teardown runs then), it stops the cluster and removes it.
WATCHDOG = """
import os, shutil, subprocess, sys, time
parent, data, base = int(sys.argv[1]), sys.argv[2], sys.argv[3]
while True:
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    time.sleep(1)
subprocess.run(["runuser", "-u", "postgres", "--", sys.argv[4], "-D", data, "-m", "immediate",
                "stop"], capture_output=True, timeout=60)
shutil.rmtree(base, ignore_errors=True)
"""


@dataclass
class Cluster:
    base: Path  # the socket lives here (short: a socket path has at most 107 bytes)
    port: int
    watchdog: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.base / "data"

    @classmethod
    def start(cls) -> Cluster:
        base = Path(tempfile.mkdtemp(prefix="wwpg-", dir="/tmp"))
        entry = pwd.getpwnam(USER)
        os.chown(base, entry.pw_uid, entry.pw_gid)
        cluster = cls(base, free_port())
        try:
            _as_postgres(str(BIN / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", USER)
            options = f"-k {base} -p {cluster.port} -c listen_addresses='' {FAST}"
            # -l: the server's output goes to a file. Left on our pipes, the postmaster would
            # hold them open and the wait for pg_ctl would never end.
            _as_postgres(
                str(BIN / "pg_ctl"), "-D", str(cluster.data), "-l", str(base / "log"),
                "-o", options, "-w", "start",
            )  # fmt: skip
        except BaseException:
            cluster.stop()
            raise
        cluster.watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(cluster.data), str(base),
             str(BIN / "pg_ctl")],
            start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return cluster

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            # Not running after all: the files go anyway.
            with contextlib.suppress(subprocess.CalledProcessError):
                _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.base, ignore_errors=True)
        if self.watchdog is not None:
            self.watchdog.kill()
            self.watchdog.wait()

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}@/{database}?host={self.base}&port={self.port}"

    def execute(self, sql: str) -> None:
        """Run one statement on the maintenance database, outside a transaction (as
        CREATE and DROP DATABASE need)."""
        with psycopg.connect(
            host=str(self.base), port=self.port, user=USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.encode())

    def create_database(self, template: str | None = None) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        clause = f" TEMPLATE {template}" if template else ""
        self.execute(f"CREATE DATABASE {name}{clause}")
        return name

    def drop_database(self, name: str) -> None:
        # FORCE: a connection a test leaked must not keep its database alive.
        self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

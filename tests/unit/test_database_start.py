"""Start-up against a database that is not there: a few seconds of retries, then a clear
error naming WIREWARDEN_DATABASE_URL and a non-zero exit, no traceback. Runs the real
console entry point in a child process (what a person or systemd sees)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ports import free_port


def run_cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # A socket directory that exists but where nothing listens: the connect fails at once,
    # as with a PostgreSQL that is down.
    sockets = tmp_path / "sock"
    sockets.mkdir()
    env = {
        **os.environ,
        "WIREWARDEN_DATA_DIR": str(tmp_path / "data"),
        "WIREWARDEN_DATABASE_URL": f"postgresql+psycopg://postgres@/ww?host={sockets}&port=5999",
        "WIREWARDEN_DATABASE_WAIT": "1.5",
        # Never bound: the start stops at the database.
        "WIREWARDEN_HTTP": f"127.0.0.1:{free_port()}",
        "WIREWARDEN_DNS_ENABLED": "false",
    }
    return subprocess.run(
        [sys.executable, "-m", "wirewarden", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", [["serve"], ["interface", "list"]], ids=["serve", "cli"])
def test_unreachable_database_is_a_clear_error(args: list[str], tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_cli(args, tmp_path)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "WIREWARDEN_DATABASE_URL" in result.stderr
    assert "cannot connect" in result.stderr and "tried for 1.5 s" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert took >= 1.4  # it did wait for the database before giving up

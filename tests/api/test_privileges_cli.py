"""Without root or CAP_NET_ADMIN, `serve` and every command that changes the kernel say so
once and exit non-zero (run as the unprivileged user nobody against a data dir of its own)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

WIREWARDEN = str(Path(sys.executable).parent / "wirewarden")
NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="switching to the user nobody needs root and setpriv (util-linux)",
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: its parents are private to root.
    top = Path(tempfile.mkdtemp(prefix="ww-nobody-"))
    top.chmod(0o755)
    data = top / "data"
    data.mkdir()
    os.chown(data, NOBODY, NOBODY)
    try:
        yield data
    finally:
        shutil.rmtree(top)


def as_nobody(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data_dir),
        "WIREWARDEN_DATA_DIR": str(data_dir),
        "WIREWARDEN_DNS_ENABLED": "false",
    }
    argv = [*AS_NOBODY, WIREWARDEN, *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_kernel_commands_need_net_admin(data_dir: Path) -> None:
    probe = as_nobody(data_dir, "interface", "list", "--json")
    if probe.returncode != 0 and "Permission denied" in probe.stderr:
        pytest.skip(f"nobody cannot run this checkout's wirewarden: {probe.stderr[-300:]}")
    # Reading the database needs no privilege...
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"
    # ...changing the kernel does: one clear line, exit 1, nothing half-made.
    for args in (
        ["interface", "add", "wg0", "--address", "10.8.0.1/24"],
        ["interface", "down", "wg0"],
        ["peer", "add", "laptop", "-i", "wg0"],
        ["serve", "--listen", "127.0.0.1:1"],
    ):
        result = as_nobody(data_dir, *args)
        said = " ".join(result.stderr.split())
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "needs root or CAP_NET_ADMIN" in said, (args, said)
        assert "Traceback" not in result.stderr
    assert as_nobody(data_dir, "interface", "list", "--json").stdout.strip() == "[]"

"""`wirewarden agent` refuses what cannot work before it touches the kernel: no control
plane named, plain http across a network, no credential and no join token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WIREWARDEN = str(Path(sys.executable).with_name("wirewarden"))


def agent(data: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "WIREWARDEN_DATA_DIR": str(data)}
    env.pop("WIREWARDEN_AGENT_JOIN_TOKEN", None)
    done = subprocess.run(
        [WIREWARDEN, "agent", *args], env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout + done.stderr


def test_no_server_and_plain_http_across_a_network_are_refused(tmp_path: Path) -> None:
    code, out = agent(tmp_path)
    assert code == 2 and "WIREWARDEN_AGENT_SERVER" in out
    code, out = agent(tmp_path, "--server", "http://198.51.100.10:8000")
    assert code == 2 and "https is required" in out
    assert not (tmp_path / "agent" / "credential").exists()


def test_an_agent_never_enrolled_and_given_no_token_stops_with_78(tmp_path: Path) -> None:
    code, out = agent(tmp_path, "--server", "https://127.0.0.1:9")
    assert code == 78 and "not enrolled" in out and "--join-token" in out
    # It said so before reconciling anything: no device, no table of its own was made.
    assert not (tmp_path / "agent" / "state").exists()

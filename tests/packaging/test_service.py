"""`wirewarden service install` writes units systemd accepts; packaging/systemd/ holds the
same units rendered with the defaults."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wirewarden.cli import service
from wirewarden.cli.main import app
from wirewarden.domain import systemd

ROOT = Path(__file__).resolve().parents[2]
# The console script of this venv: systemd-analyze wants ExecStart to exist.
WIREWARDEN = Path(sys.executable).parent / "wirewarden"
needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is missing (Debian's systemd package; scripts/setup.sh installs it)",
)


def install(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["service", "install", *args])
    return result.exit_code, result.output


def verify(unit: Path) -> None:
    """systemd-analyze verify, with any warning (an unknown key, a bad value) a failure."""
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, ""), unit.read_text()


@needs_analyze
@pytest.mark.parametrize("role", ["serve", "agent"])
def test_installed_units_pass_systemd_analyze_verify(role: str, tmp_path: Path) -> None:
    code, out = install(role, "--unit-dir", str(tmp_path), "--executable", str(WIREWARDEN))
    assert code == 0, out
    unit = tmp_path / systemd.unit_name("serve" if role == "serve" else "agent")
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    text = unit.read_text()
    assert f"ExecStart={WIREWARDEN} {role}\n" in text
    for line in (
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
        "DeviceAllow=/dev/net/tun rw",
        "Restart=on-failure",
        "KillMode=process",  # tunnels (wireguard-go) survive a restart
    ):
        assert f"\n{line}\n" in text
    verify(unit)


@needs_analyze
def test_a_data_dir_outside_var_lib_has_no_state_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out = install("--data-dir", str(data), "--user-unit-dir", str(tmp_path / "units"))
    assert code == 0, out
    unit = tmp_path / "units" / "wirewarden.service"
    text = unit.read_text()
    assert f"Environment=WIREWARDEN_DATA_DIR={data}\n" in text
    assert "StateDirectory" not in text
    # Without --executable: the wirewarden of this venv, by absolute path.
    assert f"ExecStart={os.path.abspath(WIREWARDEN)} serve\n" in text
    verify(unit)


def test_default_data_dir_is_a_state_directory() -> None:
    text = systemd.render_unit("serve", executable="/opt/ww/bin/wirewarden")
    assert "Environment=WIREWARDEN_DATA_DIR=/var/lib/wirewarden\n" in text
    assert "StateDirectory=wirewarden\n" in text
    agent = systemd.render_unit("agent", executable="/opt/ww/bin/wirewarden")
    assert "StateDirectory=wirewarden-agent\n" in agent
    assert "ExecStart=/opt/ww/bin/wirewarden agent\n" in agent
    # A refused credential (exit 78) is not retried every 5 s forever; serve has no such exit.
    assert "RestartPreventExitStatus=78\n" in agent
    assert "RestartPreventExitStatus" not in text


@pytest.mark.parametrize(
    "bad", ["relative/wirewarden", "/opt/my ww/wirewarden", "/opt/ww\nExecStartPre=/x", "/a/%n"]
)
def test_a_path_that_could_change_the_unit_is_refused(bad: str, tmp_path: Path) -> None:
    with pytest.raises(systemd.UnitError):
        systemd.render_unit("serve", executable=bad)
    if bad.startswith("/"):  # the CLI makes a relative path absolute first
        code, out = install("--unit-dir", str(tmp_path), "--executable", bad)
        assert code == 2 and "absolute path" in out
        assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("role", ["serve", "agent"])
def test_packaging_units_are_the_rendered_defaults(role: str) -> None:
    name = systemd.unit_name("serve" if role == "serve" else "agent")
    expected = systemd.render_unit(
        "serve" if role == "serve" else "agent", executable=systemd.DEFAULT_EXECUTABLE
    )
    assert (ROOT / "packaging" / "systemd" / name).read_text() == expected


def test_enable_without_systemd_writes_the_unit_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SYSTEMD_RUNTIME", tmp_path / "no-systemd")
    code, out = install("--unit-dir", str(tmp_path), "--enable")
    assert code == 1 and "systemd is not PID 1" in out
    assert (tmp_path / "wirewarden.service").is_file()


def test_enable_under_systemd_runs_systemctl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.setattr(service, "SYSTEMD_RUNTIME", tmp_path)  # any existing dir
    code, out = install("agent", "--unit-dir", str(tmp_path / "units"), "--enable")
    assert code == 0, out
    assert calls.read_text().splitlines() == [
        "daemon-reload",
        "enable --now wirewarden-agent.service",
    ]


def test_an_unwritable_unit_dir_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out = install("--unit-dir", str(blocker / "units"))
    assert code == 1 and "cannot write" in out

"""`wirewarden service install`: a systemd unit for `serve` (or a fleet node's `agent`)."""

import os
import shutil
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from wirewarden.cli.output import console, errors
from wirewarden.dataplane.run import CommandError, run
from wirewarden.domain import systemd

service_app = typer.Typer(help="Run WireWarden as a systemd service.", no_args_is_help=True)
UNIT_DIR = Path("/etc/systemd/system")
# sd_booted(3): this directory exists only when systemd is PID 1 (not in a container, a
# chroot or a machine booted with another init), the only case systemctl can act on.
SYSTEMD_RUNTIME = Path("/run/systemd/system")


class Role(StrEnum):
    serve = "serve"
    agent = "agent"


_ROLES: dict[Role, systemd.Role] = {Role.serve: "serve", Role.agent: "agent"}


@service_app.command("install")
def install(
    role: Annotated[
        Role, typer.Argument(help="serve (a VPN server) or agent (a fleet node)")
    ] = Role.serve,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="WIREWARDEN_DATA_DIR of the service (default /var/lib/wirewarden)"),
    ] = None,
    unit_dir: Annotated[
        Path, typer.Option("--unit-dir", "--user-unit-dir", help="Where the unit file goes")
    ] = UNIT_DIR,
    executable: Annotated[
        Path | None,
        typer.Option(help="The wirewarden to run (default: this one)"),
    ] = None,
    enable: Annotated[
        bool, typer.Option("--enable", help="systemctl enable --now it (systemd only)")
    ] = False,
) -> None:
    """Write the systemd unit, with its capabilities, /dev/net/tun and a data dir."""
    exe = executable or installed_executable()
    if exe is None:
        errors.print("[red]error:[/] cannot find the installed wirewarden; pass --executable")
        raise typer.Exit(2)
    data = str(Path(os.path.abspath(data_dir))) if data_dir else None
    try:
        text = systemd.render_unit(_ROLES[role], executable=os.path.abspath(exe), data_dir=data)
    except systemd.UnitError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    name = systemd.unit_name(_ROLES[role])
    path = unit_dir / name
    try:
        write_unit(path, text)
    except OSError as exc:
        errors.print(f"[red]error:[/] cannot write {path}: {exc.strerror} (as root?)")
        raise typer.Exit(1) from exc
    console.print(f"wrote {path}")
    if not enable:
        console.print(
            f"start it with: systemctl daemon-reload && systemctl enable --now {name}",
            soft_wrap=True,
        )
        return
    if not systemd_running():
        errors.print(
            f"[red]not enabled:[/] systemd is not PID 1 here; on the host run "
            f"systemctl daemon-reload && systemctl enable --now {name}",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    try:
        run(["systemctl", "daemon-reload"], timeout=60)
        run(["systemctl", "enable", "--now", name], timeout=120)
    except CommandError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"enabled and started {name}")


def installed_executable() -> Path | None:
    """The `wirewarden` script being run, else the one beside this Python (a venv), else
    the one on PATH. Absolute, symlinks kept: a venv's bin must stay the venv's."""
    script = Path(sys.argv[0])
    if script.name == "wirewarden" and script.is_file():
        return Path(os.path.abspath(script))
    beside = Path(sys.executable).parent / "wirewarden"
    if beside.is_file():
        return beside
    found = shutil.which("wirewarden")
    return Path(os.path.abspath(found)) if found else None


def systemd_running() -> bool:
    return SYSTEMD_RUNTIME.is_dir()


def write_unit(path: Path, text: str) -> None:
    """Atomically (temp file + rename), 0644 like every unit: systemd reads it as root,
    and it holds no secret (those go into the 0600 environment file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise

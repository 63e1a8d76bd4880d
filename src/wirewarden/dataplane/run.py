"""The one helper that runs every subprocess: argv only, a timeout, typed errors."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from wirewarden.domain.errors import DataplaneError

DEFAULT_TIMEOUT = 15.0


class CommandError(DataplaneError):
    """A system tool that failed, timed out or is missing; carries its stderr."""

    def __init__(self, argv: Sequence[str], message: str, returncode: int | None = None) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = message
        super().__init__(f"{argv[0]} {' '.join(argv[1:3])}: {message}".strip())


def run(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run argv with secrets (if any) on stdin; raise CommandError on failure when check."""
    try:
        result = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandError(argv, "command not found (is it installed?)") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, f"timed out after {timeout:g} s") from exc
    if check and result.returncode != 0:
        message = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
        raise CommandError(argv, message, result.returncode)
    return result


def spawn_detached(
    argv: Sequence[str], log_path: str, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Start a long-lived process in its own session, so it outlives `serve`."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def spawn_child(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start a long-lived child that `serve` supervises and stops itself (unlike
    spawn_detached): its stdout and stderr on one pipe for the caller to log. It gets a
    session of its own all the same, so a Ctrl-C on serve's terminal reaches serve alone,
    and serve stops the child after what uses it. Raises CommandError when it cannot start."""
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise CommandError(argv, "command not found (is it installed?)") from exc
    except OSError as exc:
        raise CommandError(argv, str(exc)) from exc

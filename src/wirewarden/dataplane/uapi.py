"""Talks to a userspace WireGuard device over its UAPI socket (no `wg` process per change)."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from pathlib import Path

from wirewarden.dataplane.run import CommandError
from wirewarden.domain.uapi import errno_of

REPLY_LIMIT = 1 << 16


def socket_path(uapi_dir: Path, name: str) -> Path:
    return uapi_dir / f"{name}.sock"


def send_set(path: Path, message: Iterable[str], timeout: float = 60.0) -> None:
    """Send one `set=1` message (its pieces in order) and raise CommandError unless the
    device answers errno=0."""
    argv = ["uapi", str(path), "set"]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            for piece in [message] if isinstance(message, str) else message:
                sock.sendall(piece.encode())
            reply = _read_reply(sock)
    except OSError as exc:
        raise CommandError(argv, str(exc)) from exc
    errno = errno_of(reply)
    if errno != 0:
        raise CommandError(argv, f"device answered errno={errno}", errno)


def _read_reply(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n\n") and len(data) < REPLY_LIMIT:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")

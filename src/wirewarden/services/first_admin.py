"""The first admin's generated password, kept in a 0600 file in the data dir until that
admin first signs in: the terminal shows it once, but `serve` often starts under systemd
or in a container where no one watches the terminal, and logs must never hold it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_NAME = "initial-admin-password"


class InitialPassword:
    def __init__(self, data_dir: Path, user: str) -> None:
        self.path = data_dir / FILE_NAME
        self.user = user

    def write(self, password: str) -> None:
        tmp = self.path.with_name(FILE_NAME + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        os.replace(tmp, self.path)

    def pending(self) -> bool:
        return self.path.exists()

    def signed_in(self, user: str) -> None:
        """Called on every successful password check; the file goes at the first one of
        its user (the password has done its job; the admin should now change it)."""
        if user == self.user:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

"""What the agent keeps on disk, sealed: its credential, the last state it was sent and
its unsent reports. Each file is AES-256-GCM under a key of this node only (`agent.key`,
0600, made at the first start), written whole to a temporary file and renamed over the
old one, so a crash leaves the previous version or the new one, never half of either. A
file that does not open (another key, damage) reads as absent: the agent enrols or asks
for a snapshot again rather than apply something nobody sent."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from wirewarden.store.vault import Vault, VaultError, load_or_create_key

log = logging.getLogger(__name__)
KEY = "agent.key"


class SealedFiles:
    """A directory of sealed JSON files, all under one node-local key."""

    def __init__(self, root: Path) -> None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.chmod(0o700)
        self.root = root
        self.vault = Vault(load_or_create_key(root / KEY))

    def path(self, name: str) -> Path:
        return self.root / name

    def write(self, name: str, value: Any) -> None:
        """Seal `value` (JSON) into `name`, atomically, 0600, durable before it returns."""
        blob = self.vault.encrypt(json.dumps(value, separators=(",", ":")))
        target = self.path(name)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        _sync_dir(target.parent)

    def read(self, name: str) -> Any | None:
        """The value sealed in `name`; None when absent or when it does not open."""
        try:
            blob = self.path(name).read_bytes()
        except FileNotFoundError:
            return None
        try:
            return json.loads(self.vault.decrypt(blob))
        except (VaultError, ValueError) as exc:
            log.warning("%s does not open (%s): ignored", self.path(name), exc)
            return None

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(name).unlink()


def _sync_dir(path: Path) -> None:
    # The rename is durable only once the directory's entry is.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

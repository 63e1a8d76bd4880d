"""Secrets at rest: AES-256-GCM under a master key kept outside the database."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"
NONCE_BYTES = 12
TAG_BYTES = 16


class VaultError(RuntimeError):
    pass


class Vault:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise VaultError("the master key must be 32 bytes")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), VERSION)

    def decrypt(self, blob: bytes) -> str:
        if blob[:1] != VERSION:
            raise VaultError("unknown secret format")
        if len(blob) < 1 + NONCE_BYTES + TAG_BYTES:
            raise VaultError("a secret is truncated")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, VERSION).decode()
        except InvalidTag as exc:
            raise VaultError("a secret does not open with this master key") from exc

    def encrypt_opt(self, plaintext: str | None) -> bytes | None:
        return None if plaintext is None else self.encrypt(plaintext)

    def decrypt_opt(self, blob: bytes | None) -> str | None:
        return None if blob is None else self.decrypt(blob)


def load_or_create_key(path: Path, env_value: str | None = None) -> bytes:
    """The master key from the environment, else the 0600 file, created on first start."""
    if env_value:
        return decode_key(env_value)
    if path.exists():
        return decode_key(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = AESGCM.generate_key(bit_length=256)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
    return key


def decode_key(text: str) -> bytes:
    """A master key as written in its file or the environment: base64 of 32 bytes."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise VaultError("the master key is not valid base64") from exc
    if len(key) != 32:
        raise VaultError("the master key must be 32 bytes")
    return key

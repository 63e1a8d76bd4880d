"""WireGuard keys: generated in-process with X25519, encoded like `wg genkey`."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

KEY_BYTES = 32
_RAW = serialization.Encoding.Raw


class InvalidKeyError(ValueError):
    """A string that is not a base64 encoding of 32 bytes."""


@dataclass(frozen=True)
class KeyPair:
    private_key: str
    public_key: str


def parse_key(value: str) -> str:
    """Return the canonical base64 form of a WireGuard key, or raise InvalidKeyError."""
    text = value.strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidKeyError("must be a base64-encoded 32-byte key") from exc
    if len(raw) != KEY_BYTES:
        raise InvalidKeyError("must be a base64-encoded 32-byte key")
    return base64.b64encode(raw).decode("ascii")


def public_key_of(private_key: str) -> str:
    raw = base64.b64decode(parse_key(private_key))
    public = X25519PrivateKey.from_private_bytes(raw).public_key()
    return base64.b64encode(public.public_bytes(_RAW, serialization.PublicFormat.Raw)).decode()


def generate_keypair() -> KeyPair:
    private = X25519PrivateKey.generate()
    raw = private.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
    return KeyPair(base64.b64encode(raw).decode(), base64.b64encode(public).decode())


def generate_preshared_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()

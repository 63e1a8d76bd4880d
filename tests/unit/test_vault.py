"""Secrets at rest: encryption round trip, tampering, wrong keys, the master key file."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from wirewarden.store.vault import Vault, VaultError, load_or_create_key

KEY = bytes(range(32))
SECRET = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="


@pytest.mark.parametrize("plaintext", [SECRET, "", "ünïcödé ✓", "x" * 10_000])
def test_round_trip(plaintext: str) -> None:
    vault = Vault(KEY)
    blob = vault.encrypt(plaintext)
    assert vault.decrypt(blob) == plaintext
    assert plaintext.encode() not in blob or plaintext == ""


def test_same_secret_encrypts_differently_each_time() -> None:
    vault = Vault(KEY)
    assert vault.encrypt(SECRET) != vault.encrypt(SECRET)


def test_optional_values() -> None:
    vault = Vault(KEY)
    assert vault.encrypt_opt(None) is None
    assert vault.decrypt_opt(None) is None
    assert vault.decrypt_opt(vault.encrypt_opt(SECRET)) == SECRET


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_tampering_is_detected(position: int) -> None:
    vault = Vault(KEY)
    blob = bytearray(vault.encrypt(SECRET))
    blob[position] ^= 0x01
    with pytest.raises(VaultError):
        vault.decrypt(bytes(blob))


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x01" + b"\x00" * 12, b"\x02" + b"\x00" * 40])
def test_truncated_or_foreign_blobs_are_refused(blob: bytes) -> None:
    with pytest.raises(VaultError):
        Vault(KEY).decrypt(blob)


def test_wrong_key_is_refused() -> None:
    blob = Vault(KEY).encrypt(SECRET)
    with pytest.raises(VaultError, match="master key"):
        Vault(bytes(32)).decrypt(blob)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_master_key_must_be_32_bytes(size: int) -> None:
    with pytest.raises(VaultError):
        Vault(b"k" * size)


def test_key_file_is_created_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "data" / "master.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text()) == key
    assert load_or_create_key(path) == key
    # A secret sealed before a restart opens after it.
    blob = Vault(key).encrypt(SECRET)
    assert Vault(load_or_create_key(path)).decrypt(blob) == SECRET


def test_environment_value_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    from_file = load_or_create_key(path)
    env = base64.b64encode(KEY).decode()
    assert load_or_create_key(path, env) == KEY
    assert load_or_create_key(path, env) != from_file
    # Given by the environment from the start, no file is written.
    other = tmp_path / "other.key"
    assert load_or_create_key(other, env) == KEY
    assert not other.exists()


def test_invalid_key_text_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="base64"):
        load_or_create_key(tmp_path / "k", "not base64!")
    path = tmp_path / "master.key"
    path.write_text("%%%\n")
    with pytest.raises(VaultError, match="base64"):
        load_or_create_key(path)

"""Password hashing (Argon2id) and the password policy.

Hashes carry their parameters, so raising them (WIREWARDEN_ARGON2_*) upgrades each stored hash at
that user's next successful login (`needs_rehash`). Unknown names are checked against a dummy
hash so that a wrong name and a wrong password take the same time.

Each hash or check holds its memory cost (64 MiB by default; WIREWARDEN_ARGON2_MEMORY_KIB):
at most `concurrency` run at once (60 sign-ins at once took 1 GB before). The others wait up
to SLOT_WAIT seconds in their worker thread, then fail with Busy (503, Retry-After): callers
must run these methods off the event loop.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from wirewarden.services.errors import Busy, Invalid

MAX_LENGTH = 1024  # Argon2 takes any length; this bounds the work one request can ask for
# A queue this long means more sign-ins than the machine can check: refusing is kinder to
# the thread pool (and the other routes sharing it) than waiting on.
SLOT_WAIT = 5.0


@dataclass(frozen=True)
class HashParams:
    """RFC 9106's second recommended option (64 MiB, 3 passes), one lane per core here.
    The settings WIREWARDEN_ARGON2_* choose them (config.py); these are their defaults."""

    time_cost: int = 3
    memory_cost: int = 64 * 1024  # KiB
    parallelism: int = 2


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("wirewarden.services").joinpath("data/common_passwords.txt").read_text()
    return frozenset(w.strip().lower() for w in text.splitlines() if w and not w.startswith("#"))


class Passwords:
    def __init__(
        self, min_length: int = 10, params: HashParams | None = None, concurrency: int = 2
    ) -> None:
        p = params or HashParams()
        self.min_length = min_length
        self._slots = threading.BoundedSemaphore(concurrency)
        self.hasher = PasswordHasher(
            time_cost=p.time_cost,
            memory_cost=p.memory_cost,
            parallelism=p.parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._dummy = _unmatchable(p)

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=SLOT_WAIT):
            raise Busy("too many sign-ins at once; try again in a moment")
        try:
            yield
        finally:
            self._slots.release()

    def hash(self, password: str) -> str:
        with self._slot():
            return self.hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        if len(password) > MAX_LENGTH:
            self.verify_dummy()
            return False
        with self._slot():
            try:
                return self.hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                return False

    def verify_dummy(self) -> None:
        """Spend what a real check costs, for a name that does not exist."""
        self.verify(self._dummy, "not the password")

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def check_policy(self, password: str, name: str = "") -> None:
        if len(password) < self.min_length:
            raise Invalid(
                f"the password must have at least {self.min_length} characters", "password"
            )
        if len(password) > MAX_LENGTH:
            raise Invalid(f"the password must have at most {MAX_LENGTH} characters", "password")
        lowered = password.lower()
        if lowered in common_passwords():
            raise Invalid("this password is too common; choose another", "password")
        if name and name.lower() in lowered:
            raise Invalid("the password must not contain the user name", "password")
        if len(set(password)) < 4:
            raise Invalid("the password repeats too few characters", "password")


def generate_password() -> str:
    """A password for a first admin or a reset: 20 URL-safe characters (~120 bits)."""
    return secrets.token_urlsafe(15)


def _unmatchable(p: HashParams) -> str:
    """A stored hash with these parameters that no password matches (random salt and
    digest): verifying against it costs exactly a real check, and building it costs
    nothing, where hashing one took a third of a second of every CLI command's start."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=")

    params = f"m={p.memory_cost},t={p.time_cost},p={p.parallelism}"
    return f"$argon2id$v=19${params}${b64(secrets.token_bytes(16))}${b64(secrets.token_bytes(32))}"

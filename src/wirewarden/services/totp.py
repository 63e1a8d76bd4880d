"""TOTP second factor (RFC 6238, 30 s steps, 6 digits) and one-time recovery codes."""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from datetime import UTC, datetime

import pyotp
import segno

ISSUER = "WireWarden"
WINDOW = 1  # steps either side of now: tolerates 30 s of clock drift
RECOVERY_CODES = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes are typed from paper


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, border=2, xmldecl=False)
    return out.getvalue().decode()


def step_of(when: datetime | None = None) -> int:
    return int((when or datetime.now(UTC)).timestamp()) // 30


def matching_step(
    secret: str, code: str, last_step: int | None, when: datetime | None = None
) -> int | None:
    """The time step `code` belongs to, within the window and after `last_step` (a code is
    never accepted twice), or None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = step_of(when)
    for step in range(now - WINDOW, now + WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    return [_recovery_code() for _ in range(RECOVERY_CODES)]


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))  # ~59 bits
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def hash_recovery_code(code: str) -> str:
    # ~59 random bits each, single use and behind the login rate limit: a fast hash is enough.
    normal = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(normal.encode()).hexdigest()

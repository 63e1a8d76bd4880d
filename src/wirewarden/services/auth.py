"""Signing in and staying signed in: passwords, TOTP, recovery codes, server-side sessions.

Contract for the dashboard (docs/auth.md has the whole of it): the UI calls these same
methods the /api/v1/auth routes call.

- `login(name, password, source, user_agent, code=None)` -> LoginResult; its `token` goes in
  the `ww_session` cookie (web/session.py sets it). `status` "ok" is signed in; "totp" asks
  for `complete_totp(token, code)`; "enrol" means 2FA is required but not set up: only
  `enrol_totp` / `confirm_totp` (which completes the sign-in) and `logout` work.
- `authenticate_session(token)` -> Principal (with `csrf_token`) or None.
- `logout`, `list_sessions`, `revoke_session`, `revoke_others`, `change_password`,
  `enrol_totp`, `confirm_totp`, `disable_totp`, `new_recovery_codes`.

Session tokens are 256 random bits; the database keeps only their SHA-256. Each session has
its own CSRF token. Sessions end after `idle` without use or `absolute` after sign-in,
whichever is first; logout and revocation take effect on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.services import totp
from wirewarden.services.account_schemas import SessionOut, TotpEnrolment
from wirewarden.services.context import ADMIN, SYSTEM, Actor, audit
from wirewarden.services.errors import (
    Busy,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from wirewarden.services.identity import ALL_SCOPES, FULL, Principal
from wirewarden.services.passwords import Passwords
from wirewarden.store import throttle
from wirewarden.store.tables import RecoveryCode, User, UserSession
from wirewarden.store.vault import Vault

TOTP_STAGE, ENROL_STAGE = "totp", "enrol"
HALF_OPEN_LIFETIME = timedelta(minutes=10)  # to type a code or set 2FA up
TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often
BAD_LOGIN = "invalid name or password"


@dataclass(frozen=True)
class AuthConfig:
    idle: timedelta = timedelta(hours=2)
    absolute: timedelta = timedelta(hours=24)
    totp_required_for_admins: bool = False
    max_failures: int = 5
    max_failures_per_source: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class LoginResult:
    status: str  # "ok" | "totp" | "enrol"
    token: str  # the session cookie's value
    csrf_token: str
    expires_at: datetime
    user: str
    role: str


def hash_secret(token: str) -> str:
    # 256-bit random tokens: a fast hash suffices, there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        vault: Vault,
        passwords: Passwords,
        config: AuthConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_sign_in: Callable[[str], None] = lambda _user: None,
    ) -> None:
        self.db = sessions
        self.vault = vault
        self.passwords = passwords
        self.config = config
        self.clock = clock
        # Told the user's name after each accepted password (first_admin.InitialPassword).
        self.on_sign_in = on_sign_in
        self.name_limits = throttle.Limits(config.max_failures, config.window, config.lockout)
        self.source_limits = throttle.Limits(
            config.max_failures_per_source, config.window, config.lockout
        )
        self._next_purge = clock()  # stale throttle rows are dropped once a window

    # ---- signing in

    def login(
        self,
        name: str,
        password: str,
        source: str,
        user_agent: str = "",
        code: str | None = None,
    ) -> LoginResult:
        key = name.strip().lower()
        keys = self._keys(key, source)
        with self.db() as db:
            # Counted (and committed) before the password is checked: the slow Argon2 check
            # must not hold the count's row (or SQLite's write lock) meanwhile.
            self._count_attempt(db, keys)
        try:
            with self.db() as db:
                user = db.scalar(select(User).where(User.name == key))
                if user is None or user.disabled:
                    self.passwords.verify_dummy()  # the same time as a wrong password
                    self._failed(db, None, source, "password")
                elif not self.passwords.verify(user.password_hash, password):
                    self._failed(db, user, source, "password")
                else:
                    if self.passwords.needs_rehash(user.password_hash):
                        user.password_hash = self.passwords.hash(password)
                    stage = self._stage_after_password(user)
                    if stage == TOTP_STAGE and code:
                        if not self._second_factor(db, user, code):
                            self._failed(db, user, source, "code")
                        stage = FULL
                    opened = self._open(db, user, stage, source, user_agent, keys)
                    self.on_sign_in(user.name)
                    return opened
        except Busy:
            # No password was tried: the attempt does not count against anyone.
            with self.db.begin() as db:
                for counted, _ in keys:
                    throttle.forgive(db, counted)
            raise
        raise AssertionError("unreachable")  # _failed always raises

    def complete_totp(self, token: str, code: str, source: str) -> LoginResult:
        """Second step of a sign-in: the half-open session becomes a full one (new token)."""
        with self.db() as db:
            row = self._live_session(db, token, {TOTP_STAGE})
            if row is None:
                raise Unauthorized("sign in again")
            user = db.get(User, row.user_id)
            assert user is not None
            keys = self._keys(user.name, source)
            # Counted and committed before the code is looked at, like a password.
            self._count_attempt(db, keys)
            if not self._second_factor(db, user, code):
                self._failed(db, user, source, "code")
            row.revoked_at = self.clock()
            return self._open(db, user, FULL, source, row.user_agent, keys)

    def _stage_after_password(self, user: User) -> str:
        if user.totp_enabled:
            return TOTP_STAGE
        if user.totp_required or (user.role == ADMIN and self.config.totp_required_for_admins):
            return ENROL_STAGE
        return FULL

    def _second_factor(self, db: Session, user: User, code: str) -> bool:
        """A TOTP code (each accepted once) or an unused recovery code (then spent)."""
        if user.totp_secret_enc is None:
            return False
        secret = self.vault.decrypt(user.totp_secret_enc)
        step = totp.matching_step(secret, code, user.totp_last_step, self.clock())
        if step is not None:
            user.totp_last_step = step
            return True
        spent = db.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == totp.hash_recovery_code(code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=self.clock())
        )
        if spent.rowcount == 1:  # type: ignore[attr-defined]
            audit(db, self._actor_of(user, ""), "auth.recovery_code.use", user.name)
            return True
        return False

    def _keys(self, name: str, source: str) -> list[tuple[str, throttle.Limits]]:
        return [
            (throttle.throttle_key("name", name), self.name_limits),
            (throttle.throttle_key("source", source), self.source_limits),
        ]

    def _count_attempt(self, db: Session, keys: list[tuple[str, throttle.Limits]]) -> None:
        """Count one attempt on each key, atomically, and commit it; TooManyAttempts when a
        key is locked out. Unknown names count like known ones: a lockout tells nothing."""
        now = self.clock()
        if now >= self._next_purge:
            throttle.purge(db, now, self.name_limits)
            self._next_purge = now + self.config.window
        ends = [throttle.count_attempt(db, key, now, limits) for key, limits in keys]
        db.commit()
        until = max((end for end in ends if end is not None), default=None)
        if until is not None:
            wait = int((until - now).total_seconds()) + 1
            raise TooManyAttempts("too many failed sign-ins; try again later", wait)

    def _failed(self, db: Session, user: User | None, source: str, why: str) -> None:
        # The attempt is already counted. An unknown name is not recorded: people type
        # passwords into the name field.
        target = user.name if user else "(unknown user)"
        audit(db, Actor(target, source), "auth.login.failed", target, reason=why)
        db.commit()
        raise Unauthorized(BAD_LOGIN if why == "password" else "invalid code")

    def _open(
        self,
        db: Session,
        user: User,
        stage: str,
        source: str,
        user_agent: str,
        keys: list[tuple[str, throttle.Limits]],
    ) -> LoginResult:
        now = self.clock()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        lifetime = self.config.absolute if stage == FULL else HALF_OPEN_LIFETIME
        db.add(
            UserSession(
                user_id=user.id,
                token_hash=hash_secret(token),
                csrf_token=csrf,
                stage=stage,
                source=source[:64],
                user_agent=user_agent[:255],
                created_at=now,
                last_seen_at=now,
                expires_at=now + lifetime,
            )
        )
        (name_key, _), (source_key, _) = keys
        # The right password (and code) was no failure: the source gets its attempt back,
        # and a full sign-in clears the account's count.
        throttle.forgive(db, source_key)
        if stage == FULL:
            throttle.clear(db, name_key)
        else:
            throttle.forgive(db, name_key)
        if stage == FULL:
            user.last_login_at = now
            audit(db, self._actor_of(user, source), "auth.login", user.name)
        db.commit()
        return LoginResult(stage if stage != FULL else "ok", token, csrf, now + lifetime,
                           user.name, user.role)  # fmt: skip

    # ---- sessions

    def authenticate_session(
        self, token: str, stages: AbstractSet[str] = frozenset({FULL})
    ) -> Principal | None:
        with self.db() as db:
            row = self._live_session(db, token, stages)
            if row is None:
                return None
            user = db.get(User, row.user_id)
            if user is None or user.disabled:
                return None
            if self.clock() - row.last_seen_at > TOUCH_EVERY:
                row.last_seen_at = self.clock()
                db.commit()
            return Principal(
                user.name,
                ALL_SCOPES,
                kind="session",
                user_id=user.id,
                role=user.role,
                tenant_id=user.tenant_id,
                session_id=row.id,
                csrf_token=row.csrf_token,
                stage=row.stage,
            )

    def _live_session(self, db: Session, token: str, stages: AbstractSet[str]) -> (
        UserSession | None
    ):  # fmt: skip
        row = db.scalar(select(UserSession).where(UserSession.token_hash == hash_secret(token)))
        now = self.clock()
        if row is None or row.revoked_at is not None or row.stage not in stages:
            return None
        if row.expires_at <= now or now - row.last_seen_at > self.config.idle:
            return None
        return row

    def logout(self, session_id: int, actor: Actor) -> None:
        with self.db.begin() as db:
            db.execute(
                update(UserSession)
                .where(UserSession.id == session_id, UserSession.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
            audit(db, actor, "auth.logout", actor.name)

    def list_sessions(self, user_id: int, current: int | None = None) -> list[SessionOut]:
        now = self.clock()
        with self.db() as db:
            rows = db.scalars(
                select(UserSession)
                .where(
                    UserSession.user_id == user_id,
                    UserSession.revoked_at.is_(None),
                    UserSession.stage == FULL,
                    UserSession.expires_at > now,
                    UserSession.last_seen_at > now - self.config.idle,
                )
                .order_by(UserSession.last_seen_at.desc())
            )
            return [
                SessionOut(
                    id=r.id,
                    created_at=r.created_at,
                    last_seen_at=r.last_seen_at,
                    expires_at=r.expires_at,
                    source=r.source,
                    user_agent=r.user_agent,
                    current=r.id == current,
                )
                for r in rows
            ]

    def revoke_session(self, user_id: int, session_id: int, actor: Actor) -> None:
        with self.db.begin() as db:
            done = db.execute(
                update(UserSession)
                .where(
                    UserSession.id == session_id,
                    UserSession.user_id == user_id,
                    UserSession.revoked_at.is_(None),
                )
                .values(revoked_at=self.clock())
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFound(f"session {session_id} not found")
            audit(db, actor, "auth.session.revoke", actor.name, session=session_id)

    def revoke_others(self, user_id: int, keep: int | None, actor: Actor) -> int:
        """Sign out every other session of the user (all of them when `keep` is None)."""
        with self.db.begin() as db:
            count = self._revoke_all(db, user_id, keep)
            audit(db, actor, "auth.session.revoke_others", actor.name, count=count)
            return count

    def _revoke_all(self, db: Session, user_id: int, keep: int | None) -> int:
        query = update(UserSession).where(
            UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
        )
        if keep is not None:
            query = query.where(UserSession.id != keep)
        done = db.execute(query.values(revoked_at=self.clock()))
        return int(done.rowcount)  # type: ignore[attr-defined]

    def purge_expired(self) -> int:
        """Drop sessions over their absolute lifetime (revoked ones too, after that)."""
        with self.db.begin() as db:
            done = db.execute(delete(UserSession).where(UserSession.expires_at < self.clock()))
            return int(done.rowcount)  # type: ignore[attr-defined]

    # ---- password and second factor of the signed-in user

    def change_password(
        self, user_id: int, current: str, new: str, actor: Actor, keep: int | None = None
    ) -> None:
        with self.db.begin() as db:
            user = self._user(db, user_id)
            if not self.passwords.verify(user.password_hash, current):
                raise Invalid("the current password is wrong", "current_password")
            self.passwords.check_policy(new, user.name)
            user.password_hash = self.passwords.hash(new)
            user.password_changed_at = self.clock()
            revoked = self._revoke_all(db, user.id, keep)
            audit(db, actor, "user.password.change", user.name, sessions_revoked=revoked)

    def enrol_totp(self, user_id: int, actor: Actor) -> TotpEnrolment:
        """A new secret, stored but not active until `confirm_totp` sees a code from it."""
        with self.db.begin() as db:
            user = self._user(db, user_id)
            if user.totp_enabled:
                raise Conflict("2FA is already on; turn it off first", "totp")
            secret = totp.new_secret()
            user.totp_secret_enc = self.vault.encrypt(secret)
            user.totp_last_step = None
            audit(db, actor, "auth.totp.enrol", user.name)
        uri = totp.provisioning_uri(secret, user.name)
        return TotpEnrolment(secret=secret, uri=uri, qr_svg=totp.qr_svg(uri))

    def pending_totp(self, user_id: int) -> TotpEnrolment | None:
        """The enrolment started and not yet confirmed, to show again after a wrong code:
        a new secret then would leave a dead entry in the user's authenticator app."""
        with self.db() as db:
            user = self._user(db, user_id)
            if user.totp_enabled or user.totp_secret_enc is None:
                return None
            secret = self.vault.decrypt(user.totp_secret_enc)
            name = user.name
        uri = totp.provisioning_uri(secret, name)
        return TotpEnrolment(secret=secret, uri=uri, qr_svg=totp.qr_svg(uri))

    def cancel_totp(self, user_id: int, actor: Actor) -> None:
        """Drop an enrolment not yet confirmed (2FA already on stays on)."""
        with self.db.begin() as db:
            user = self._user(db, user_id)
            if user.totp_enabled or user.totp_secret_enc is None:
                return
            clear_totp(db, user)
            audit(db, actor, "auth.totp.cancel", user.name)

    def confirm_totp(
        self, user_id: int, code: str, actor: Actor, session_id: int | None = None
    ) -> list[str]:
        """Turn 2FA on; returns the ten recovery codes (shown once). Completes an "enrol"
        sign-in: that session becomes a full one."""
        with self.db.begin() as db:
            user = self._user(db, user_id)
            if user.totp_enabled or user.totp_secret_enc is None:
                raise Conflict("start an enrolment first", "code")
            secret = self.vault.decrypt(user.totp_secret_enc)
            step = totp.matching_step(secret, code, None, self.clock())
            if step is None:
                raise Invalid(
                    "that code does not match; enter the code the app shows now for this "
                    "same key (if it still fails, check the device's clock)",
                    "code",
                )
            user.totp_enabled, user.totp_last_step = True, step
            codes = self._replace_recovery_codes(db, user)
            if session_id is not None:
                db.execute(
                    update(UserSession)
                    .where(UserSession.id == session_id, UserSession.stage == ENROL_STAGE)
                    .values(stage=FULL, expires_at=self.clock() + self.config.absolute)
                )
            audit(db, actor, "auth.totp.confirm", user.name)
            return codes

    def disable_totp(self, user_id: int, password: str, actor: Actor) -> None:
        with self.db.begin() as db:
            user = self._user(db, user_id)
            if user.totp_required or (user.role == ADMIN and self.config.totp_required_for_admins):
                raise Forbidden("2FA is required for this account")
            if not self.passwords.verify(user.password_hash, password):
                raise Invalid("the password is wrong", "password")
            clear_totp(db, user)
            audit(db, actor, "auth.totp.disable", user.name)

    def new_recovery_codes(self, user_id: int, password: str, actor: Actor) -> list[str]:
        with self.db.begin() as db:
            user = self._user(db, user_id)
            if not user.totp_enabled:
                raise Conflict("turn 2FA on first", "totp")
            if not self.passwords.verify(user.password_hash, password):
                raise Invalid("the password is wrong", "password")
            codes = self._replace_recovery_codes(db, user)
            audit(db, actor, "auth.recovery_codes.renew", user.name)
            return codes

    def recovery_codes_left(self, user_id: int) -> int:
        with self.db() as db:
            return db.scalar(
                select(func.count()).where(
                    RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
                )
            ) or 0  # fmt: skip

    def _replace_recovery_codes(self, db: Session, user: User) -> list[str]:
        db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        codes = totp.new_recovery_codes()
        db.add_all(
            RecoveryCode(user_id=user.id, code_hash=totp.hash_recovery_code(c)) for c in codes
        )
        return codes

    def _user(self, db: Session, user_id: int | None) -> User:
        user = db.get(User, user_id) if user_id is not None else None
        if user is None:
            raise Forbidden("this needs a user account (not a system token)")
        return user

    @staticmethod
    def _actor_of(user: User, source: str) -> Actor:
        return Actor(user.name, source, user.id, user.role, user.tenant_id, "session")


def clear_totp(db: Session, user: User) -> None:
    user.totp_enabled = False
    user.totp_secret_enc = None
    user.totp_last_step = None
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


__all__ = ["SYSTEM", "AuthConfig", "AuthService", "LoginResult", "csrf_matches"]

"""Users and roles: admin, tenant-admin (one tenant), member (own devices up to a limit).

Admins manage everyone. A tenant-admin manages the members of their own tenant. Anyone
reads and changes their own password and 2FA through auth.AuthService.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.services.account_schemas import UserCreate, UserOut, UserUpdate
from wirewarden.services.auth import clear_totp
from wirewarden.services.context import (
    ADMIN,
    MEMBER,
    TENANT_ADMIN,
    Actor,
    audit,
    page_of,
    tenant_id_of,
)
from wirewarden.services.errors import Conflict, Forbidden, Invalid, NotFound
from wirewarden.services.passwords import Passwords, generate_password
from wirewarden.services.schemas import Page
from wirewarden.services.shares import end_links_of
from wirewarden.store.tables import Peer, Tenant, User, UserSession

FIRST_ADMIN = "admin"


class UserService:
    def __init__(
        self, sessions: sessionmaker[Session], passwords: Passwords, default_device_limit: int
    ) -> None:
        self.db = sessions
        self.passwords = passwords
        self.default_device_limit = default_device_limit

    # ---- reading

    def list(
        self, actor: Actor, name: str | None = None, limit: int = 100, offset: int = 0
    ) -> Page[UserOut]:
        _require_manager(actor)
        with self.db() as db:
            query = select(User)
            if not actor.is_admin:
                # The members a tenant-admin manages, and themselves.
                query = query.where(
                    User.tenant_id == actor.tenant_id,
                    (User.role == MEMBER) | (User.id == actor.user_id),
                )
            if name:
                query = query.where(User.name.contains(name, autoescape=True))
            total, rows = page_of(db, query, User.name, limit, offset)
            return Page(
                items=[self.to_out(db, u) for u in rows], total=total, limit=limit, offset=offset
            )

    def get(self, name: str, actor: Actor) -> UserOut:
        with self.db() as db:
            return self.to_out(db, self._visible(db, name, actor))

    def me(self, user_id: int) -> UserOut:
        with self.db() as db:
            user = db.get(User, user_id)
            if user is None:
                raise NotFound("your account no longer exists")
            return self.to_out(db, user)

    def exists(self) -> bool:
        with self.db() as db:
            return db.scalar(select(User.id).limit(1)) is not None

    def first_admin(self) -> str | None:
        with self.db() as db:
            return db.scalar(select(User.name).where(User.role == ADMIN).order_by(User.id).limit(1))

    def to_out(self, db: Session, user: User) -> UserOut:
        tenant = db.scalar(select(Tenant.name).where(Tenant.id == user.tenant_id))
        count = db.scalar(select(func.count()).where(Peer.owner_id == user.id)) or 0
        return UserOut(
            name=user.name,
            role=user.role,
            tenant=tenant,
            device_limit=user.device_limit,
            device_count=count,
            totp_enabled=user.totp_enabled,
            totp_required=user.totp_required,
            disabled=user.disabled,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
        )

    # ---- changing

    def create(self, data: UserCreate, actor: Actor) -> UserOut:
        _require_manager(actor)
        if not actor.is_admin and data.role != MEMBER:
            raise Forbidden("tenant admins create members only", "role")
        self.passwords.check_policy(data.password, data.name)
        with self.db.begin() as db:
            if db.scalar(select(User.id).where(User.name == data.name)):
                raise Conflict(f"user {data.name!r} already exists", "name")
            tenant = self._tenant_for(db, data.role, data.tenant, actor)
            user = User(
                name=data.name,
                role=data.role,
                tenant_id=tenant,
                password_hash=self.passwords.hash(data.password),
                device_limit=(
                    data.device_limit
                    if "device_limit" in data.model_fields_set
                    else (self.default_device_limit if data.role == MEMBER else None)
                ),
                totp_required=data.totp_required,
            )
            db.add(user)
            db.flush()
            audit(
                db,
                actor,
                "user.create",
                data.name,
                _tenant_of(user),
                role=data.role,
                tenant=data.tenant,
            )
            return self.to_out(db, user)

    def update(self, name: str, data: UserUpdate, actor: Actor) -> UserOut:
        _require_manager(actor)
        changes = data.model_dump(exclude_unset=True)
        with self.db.begin() as db:
            user = self._visible(db, name, actor)
            if not actor.is_admin and (data.role not in (None, MEMBER) or "tenant" in changes):
                raise Forbidden("tenant admins may not change roles or tenants", "role")
            if user.id == actor.user_id and ("role" in changes or changes.get("disabled")):
                raise Forbidden("you cannot change your own role or disable yourself", "role")
            if changes.get("role", ADMIN) != ADMIN or changes.get("disabled"):
                self._keep_an_admin(db, user)
            if "role" in changes or "tenant" in changes:
                role = changes.get("role") or user.role
                tenant_name = changes["tenant"] if "tenant" in changes else _tenant_name(db, user)
                user.tenant_id = self._tenant_for(db, role, tenant_name, actor)
                user.role = role
            if "device_limit" in changes:
                user.device_limit = changes["device_limit"]
            if changes.get("totp_required") is not None:
                user.totp_required = bool(changes["totp_required"])
            if "disabled" in changes and changes["disabled"] is not None:
                user.disabled = bool(changes["disabled"])
                if user.disabled:
                    _end_sessions(db, user)
                    # A link they handed out must not outlive their access.
                    changes["share_links_ended"] = end_links_of(db, user.id)
            audit(
                db,
                actor,
                "user.update",
                name,
                _tenant_of(user),
                **{k: str(v) for k, v in changes.items()},
            )
            return self.to_out(db, user)

    def set_disabled(self, name: str, disabled: bool, actor: Actor) -> UserOut:
        return self.update(name, UserUpdate(disabled=disabled), actor)

    def set_password(self, name: str, password: str, actor: Actor) -> None:
        """A manager sets someone's password: every session of theirs ends."""
        with self.db.begin() as db:
            user = self._visible(db, name, actor)
            if user.id != actor.user_id:
                _require_manager(actor)
            self.passwords.check_policy(password, user.name)
            user.password_hash = self.passwords.hash(password)
            user.password_changed_at = datetime.now(UTC)
            _end_sessions(db, user)
            audit(db, actor, "user.password.set", name, _tenant_of(user))

    def reset_2fa(self, name: str, actor: Actor) -> None:
        """For a lost phone: 2FA off, recovery codes gone, sessions ended."""
        _require_manager(actor)
        with self.db.begin() as db:
            user = self._visible(db, name, actor)
            clear_totp(db, user)
            _end_sessions(db, user)
            audit(db, actor, "user.reset_2fa", name, _tenant_of(user))

    def delete(self, name: str, actor: Actor) -> None:
        _require_manager(actor)
        with self.db.begin() as db:
            user = self._visible(db, name, actor)
            if user.id == actor.user_id:
                raise Forbidden("you cannot delete yourself")
            self._keep_an_admin(db, user)
            # Their devices stay (owner cleared by the foreign key); their tokens and share
            # links go with them.
            db.delete(user)
            audit(db, actor, "user.delete", name, _tenant_of(user))

    def ensure_first_admin(self, password: str | None, actor: Actor) -> tuple[str, str] | None:
        """On a first start with no user: an admin, with `password` or a generated one.
        Returns (name, password) when it made one."""
        if self.exists():
            return None
        chosen = password or generate_password()
        self.passwords.check_policy(chosen, FIRST_ADMIN)
        self.create(UserCreate(name=FIRST_ADMIN, role=ADMIN, password=chosen), actor)
        return FIRST_ADMIN, chosen

    # ---- helpers

    def _visible(self, db: Session, name: str, actor: Actor) -> User:
        user = db.scalar(select(User).where(User.name == name))
        mine = user is not None and user.id == actor.user_id
        same_tenant = (
            user is not None
            and actor.role == TENANT_ADMIN
            and (user.tenant_id == actor.tenant_id and user.role == MEMBER)
        )
        if user is None or not (actor.is_admin or mine or same_tenant):
            raise NotFound(f"user {name!r} not found")
        return user

    def _tenant_for(self, db: Session, role: str, tenant: str | None, actor: Actor) -> int | None:
        if not actor.is_admin:
            # Its own tenant only; another tenant's name reads as one that does not exist.
            if tenant is not None and tenant_id_of(db, tenant) != actor.tenant_id:
                raise Invalid(f"no tenant named {tenant!r}", "tenant")
            return actor.tenant_id
        if role == ADMIN:
            return None
        found = tenant_id_of(db, tenant)
        if found is None:
            raise Invalid(f"no tenant named {tenant!r}", "tenant")
        return found

    def _keep_an_admin(self, db: Session, user: User) -> None:
        if user.role != ADMIN:
            return
        others = db.scalar(
            select(func.count()).where(User.role == ADMIN, User.id != user.id, ~User.disabled)
        )
        if not others:
            raise Conflict("this is the last active admin", "role")


def _require_manager(actor: Actor) -> None:
    if actor.role not in (ADMIN, TENANT_ADMIN):
        raise Forbidden("only admins and tenant admins manage users")


def _tenant_name(db: Session, user: User) -> str | None:
    return db.scalar(select(Tenant.name).where(Tenant.id == user.tenant_id))


def _end_sessions(db: Session, user: User) -> None:
    """Every session of the user stops working at once (a disabled user's API tokens are
    refused at authentication while the account stays disabled)."""
    now = datetime.now(UTC)
    for row in db.scalars(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    ):
        row.revoked_at = now


def _tenant_of(user: User) -> int | None:
    """The tenant whose admin reads this user's events: none for an admin's."""
    return None if user.role == ADMIN else user.tenant_id

"""Inputs and outputs of the account use cases (users, sign-in, 2FA, tokens, audit, shares)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from wirewarden.domain.names import check_name
from wirewarden.services.schemas import Strict

Role = Literal["admin", "tenant-admin", "member"]
Scope = Literal["read", "write", "admin"]
DeviceLimit = int | None


class UserCreate(Strict):
    name: str = Field(description="Lower-case letters, digits, - and _; at most 32")
    role: Role = "member"
    password: str = Field(max_length=1024, repr=False)
    tenant: str | None = Field(None, description="Tenant name (tenant-admin, member)")
    device_limit: DeviceLimit = Field(None, ge=0, le=100_000, description="Default: setting")
    totp_required: bool = False

    _name = field_validator("name")(lambda cls, v: check_name(v))


class UserUpdate(Strict):
    role: Role | None = None
    tenant: str | None = None
    device_limit: DeviceLimit = Field(None, ge=0, le=100_000, description="null: no limit")
    disabled: bool | None = None
    totp_required: bool | None = None


class UserOut(BaseModel):
    name: str
    role: str
    tenant: str | None
    device_limit: int | None
    device_count: int
    totp_enabled: bool
    totp_required: bool
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


class PasswordSet(Strict):
    password: str = Field(max_length=1024, repr=False)


class PasswordChange(Strict):
    current_password: str = Field(max_length=1024, repr=False)
    new_password: str = Field(max_length=1024, repr=False)


class LoginIn(Strict):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024, repr=False)
    totp: str | None = Field(None, max_length=16, description="The 6-digit code, if enrolled")
    recovery_code: str | None = Field(None, max_length=32, description="Instead of a code")


class CodeIn(Strict):
    code: str = Field(max_length=32, description="A TOTP code or a recovery code")


class PasswordIn(Strict):
    password: str = Field(max_length=1024, repr=False)


class LoginOut(BaseModel):
    # ok: signed in. totp: send a code to /auth/login/totp. enrol: set 2FA up first.
    status: Literal["ok", "totp", "enrol"]
    user: str
    role: str
    csrf_token: str
    expires_at: datetime


class MeOut(BaseModel):
    name: str
    role: str
    tenant: str | None
    auth: Literal["session", "token"]
    stage: str
    csrf_token: str | None = Field(description="Send as X-CSRF-Token (or csrf_token field)")
    totp_enabled: bool
    totp_required: bool
    device_limit: int | None
    device_count: int


class SessionOut(BaseModel):
    id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    source: str
    user_agent: str
    current: bool


class RevokedOut(BaseModel):
    revoked: int


class TotpEnrolment(BaseModel):
    secret: str
    uri: str
    qr_svg: str


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class TokenCreate(Strict):
    name: str
    scopes: list[Scope] = Field(default=["read", "write"], min_length=1)
    user: str | None = Field(None, description="Owner (admins only; default: yourself)")

    _name = field_validator("name")(lambda cls, v: check_name(v))


class TokenCreated(BaseModel):
    token: str = Field(description="Shown this once")
    name: str
    scopes: list[str]
    user: str | None


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    source: str
    detail: dict[str, Any]


class ShareCreate(Strict):
    hours: int | None = Field(None, ge=1, le=24 * 30, description="Default: 24")


class ShareOut(BaseModel):
    url: str = Field(description="Path of the link; works once")
    expires_at: datetime

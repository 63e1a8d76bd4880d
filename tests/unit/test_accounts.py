"""Password hashing, TOTP windows, recovery codes, and role permissions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest

from wirewarden.bootstrap import hash_params
from wirewarden.config import Settings, SettingsError
from wirewarden.services import access, totp
from wirewarden.services.context import ADMIN, MEMBER, TENANT_ADMIN, Actor
from wirewarden.services.errors import Forbidden, Invalid, NotFound
from wirewarden.services.passwords import HashParams, Passwords, common_passwords
from wirewarden.store.tables import Interface, Peer

FAST = HashParams(time_cost=1, memory_cost=8 * 1024, parallelism=1)

# ---- passwords


def test_hashes_are_argon2id_with_the_configured_parameters() -> None:
    stored = Passwords().hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=2$")
    assert Passwords().verify(stored, "correct horse battery")
    assert not Passwords().verify(stored, "correct horse batterY")


def test_same_password_hashes_differently_each_time() -> None:
    hasher = Passwords(params=FAST)
    assert hasher.hash("same password here") != hasher.hash("same password here")


def test_weaker_parameters_need_a_rehash() -> None:
    old = Passwords(params=FAST).hash("correct horse battery")
    current = Passwords()
    assert current.verify(old, "correct horse battery")  # still signs in...
    assert current.needs_rehash(old)  # ...and is upgraded then
    assert not current.needs_rehash(current.hash("correct horse battery"))


def test_garbage_hash_never_verifies() -> None:
    hasher = Passwords(params=FAST)
    assert not hasher.verify("not-a-hash", "anything at all")
    assert hasher.needs_rehash("not-a-hash")


def test_overlong_password_is_refused_without_hashing_it() -> None:
    hasher = Passwords(params=FAST)
    assert not hasher.verify(hasher.hash("x" * 10), "x" * 5000)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short1", "at least 10"),
        ("password123", "too common"),
        ("Password123", "too common"),
        ("aaaaaaaaaaaaaa", "too few"),
        ("alice-is-great-2026", "user name"),
        ("x" * 1025, "at most"),
    ],
)
def test_password_policy(password: str, why: str) -> None:
    with pytest.raises(Invalid) as err:
        Passwords(params=FAST).check_policy(password, "alice")
    assert why in err.value.message and err.value.field == "password"


def test_good_password_passes_and_the_list_is_shipped() -> None:
    Passwords(params=FAST).check_policy("correct horse battery staple", "alice")
    assert "password123" in common_passwords() and len(common_passwords()) > 100


# ---- TOTP

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def code_at(when: datetime) -> str:
    return pyotp.TOTP(SECRET).at(when)


@pytest.mark.parametrize("offset", [-30, 0, 30])
def test_totp_accepts_one_step_either_side(offset: int) -> None:
    step = totp.matching_step(SECRET, code_at(NOW + timedelta(seconds=offset)), None, NOW)
    assert step == totp.step_of(NOW) + offset // 30


@pytest.mark.parametrize("offset", [-90, -60, 60, 90])
def test_totp_refuses_codes_outside_the_window(offset: int) -> None:
    assert totp.matching_step(SECRET, code_at(NOW + timedelta(seconds=offset)), None, NOW) is None


def test_totp_code_is_accepted_once() -> None:
    code = code_at(NOW)
    step = totp.matching_step(SECRET, code, None, NOW)
    assert step is not None
    assert totp.matching_step(SECRET, code, step, NOW) is None
    # An older step's code is refused once a newer one was used.
    earlier = code_at(NOW - timedelta(seconds=30))
    assert totp.matching_step(SECRET, earlier, step, NOW) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_totp_refuses_malformed_codes(code: str) -> None:
    assert totp.matching_step(SECRET, code, None, NOW) is None


def test_totp_code_with_spaces_is_fine() -> None:
    code = code_at(NOW)
    assert totp.matching_step(SECRET, f"{code[:3]} {code[3:]}", None, NOW) is not None


def test_provisioning_uri_and_qr() -> None:
    uri = totp.provisioning_uri(SECRET, "alice")
    assert uri.startswith("otpauth://totp/WireWarden:alice?") and f"secret={SECRET}" in uri
    svg = totp.qr_svg(uri)
    assert svg.startswith("<svg") and "style=" not in svg  # no inline style: strict CSP


# ---- recovery codes


def test_ten_distinct_recovery_codes_of_unambiguous_letters() -> None:
    codes = totp.new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert len(code) == 14 and code[4] == code[9] == "-"
        assert not set(code.replace("-", "")) & set("01ilo")


def test_recovery_code_hash_ignores_case_dashes_and_spaces() -> None:
    code = totp.new_recovery_codes()[0]
    squashed = code.replace("-", "").upper()
    assert totp.hash_recovery_code(code) == totp.hash_recovery_code(f" {squashed} ")
    assert totp.hash_recovery_code(code) != totp.hash_recovery_code(totp.new_recovery_codes()[0])
    assert code not in totp.hash_recovery_code(code)


# ---- permissions per role

ADMIN_ACTOR = Actor("root", role=ADMIN, user_id=1)
TADMIN = Actor("boss", role=TENANT_ADMIN, user_id=2, tenant_id=7)
ALICE = Actor("alice", role=MEMBER, user_id=3, tenant_id=7)
BOB = Actor("bob", role=MEMBER, user_id=4, tenant_id=7)


def iface(tenant: int) -> Interface:
    return Interface(name=f"wg{tenant}", tenant_id=tenant)


def peer(owner: int | None) -> Peer:
    return Peer(id=42, owner_id=owner)


@pytest.mark.parametrize(
    ("actor", "tenant", "owner", "visible"),
    [
        (ADMIN_ACTOR, 1, None, True),
        (ADMIN_ACTOR, 7, 3, True),
        (TADMIN, 7, None, True),
        (TADMIN, 7, 3, True),
        (TADMIN, 1, 3, False),
        (ALICE, 7, 3, True),
        (ALICE, 7, 4, False),
        (ALICE, 7, None, False),
        (ALICE, 1, 3, False),
        (BOB, 7, 3, False),
    ],
)
def test_who_sees_which_peer(actor: Actor, tenant: int, owner: int | None, visible: bool) -> None:
    if visible:
        access.check_peer(actor, peer(owner), iface(tenant))
    else:
        with pytest.raises(NotFound):  # 404 like a missing peer: ids are not confirmed
            access.check_peer(actor, peer(owner), iface(tenant))


@pytest.mark.parametrize(
    ("actor", "tenant", "visible"),
    [
        (ADMIN_ACTOR, 1, True),
        (TADMIN, 7, True),
        (TADMIN, 1, False),
        (ALICE, 7, True),
        (ALICE, 1, False),
    ],
)
def test_who_sees_which_interface(actor: Actor, tenant: int, visible: bool) -> None:
    if visible:
        access.check_interface(actor, iface(tenant))
    else:
        with pytest.raises(NotFound):
            access.check_interface(actor, iface(tenant))


def test_managers_and_admins() -> None:
    access.require_admin(ADMIN_ACTOR)
    for actor in (TADMIN, ALICE):
        with pytest.raises(Forbidden):
            access.require_admin(actor)
    access.require_manager(ADMIN_ACTOR)
    access.require_manager(TADMIN)
    with pytest.raises(Forbidden):
        access.require_manager(ALICE)


def test_members_set_only_their_device_fields() -> None:
    allowed = access.MEMBER_UPDATE_FIELDS
    access.check_member_fields(ALICE, {"name", "enabled"}, allowed)
    for field in ("routed_ips", "expires_at", "rate_down_kbit", "acl", "data_cap_bytes"):
        with pytest.raises(Forbidden) as err:
            access.check_member_fields(ALICE, {"name", field}, allowed)
        assert err.value.field == field
    # Managers are not limited by the member list.
    access.check_member_fields(TADMIN, {"routed_ips", "acl"}, allowed)


def test_hash_cost_comes_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, argon2_time_cost=2, argon2_memory_kib=16, argon2_parallelism=1
    )
    stored = Passwords(params=hash_params(settings)).hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=16,t=2,p=1$")
    # Argon2 needs 8 KiB a lane: said by the setting's name at start, not at the first hash.
    with pytest.raises(SettingsError, match="WIREWARDEN_ARGON2_MEMORY_KIB"):
        hash_params(Settings(data_dir=tmp_path, argon2_memory_kib=8, argon2_parallelism=2))

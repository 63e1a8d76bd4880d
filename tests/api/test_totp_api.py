"""TOTP enrolment, sign-in with a code or a recovery code, 2FA required, reset."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from tests.api.conftest import PASSWORD, stored_bytes
from wirewarden.bootstrap import Container
from wirewarden.services.context import SYSTEM

Browser = Callable[..., TestClient]


def csrf(user: TestClient, token: str | None = None) -> dict[str, str]:
    return {"X-CSRF-Token": token or user.csrf}  # type: ignore[attr-defined]


def enrol(user: TestClient, token: str | None = None) -> tuple[str, list[str]]:
    """Enrol TOTP through the API; returns the secret and the recovery codes."""
    started = user.post("/api/v1/auth/totp/enrol", headers=csrf(user, token))
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["uri"].startswith("otpauth://totp/") and body["qr_svg"].startswith("<svg")
    secret: str = body["secret"]
    wrong = user.post(
        "/api/v1/auth/totp/confirm", json={"code": "000000"}, headers=csrf(user, token)
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "code"
    code = pyotp.TOTP(secret).now()
    done = user.post("/api/v1/auth/totp/confirm", json={"code": code}, headers=csrf(user, token))
    assert done.status_code == 200, done.text
    codes: list[str] = done.json()["recovery_codes"]
    assert len(codes) == 10
    return secret, codes


def next_code(secret: str) -> str:
    """The next step's code: enrolment just used this step's, and a code works once."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def login(client: TestClient, **body: Any) -> Any:
    return client.post("/api/v1/auth/login", json={"name": "alice", "password": PASSWORD, **body})


def test_asking_again_before_confirming_keeps_the_pending_secret(
    browser: Browser, make_user: Any
) -> None:
    make_user("alice")
    user = browser("alice")
    first = user.post("/api/v1/auth/totp/enrol", headers=csrf(user)).json()["secret"]
    # A retry (the answer was lost, or a wrong code): the secret already in the app stays.
    again = user.post("/api/v1/auth/totp/enrol", headers=csrf(user)).json()["secret"]
    assert again == first
    # Dropped on request: the next enrolment is a new secret, the old one's codes fail.
    assert user.delete("/api/v1/auth/totp/enrol", headers=csrf(user)).status_code == 204
    fresh = user.post("/api/v1/auth/totp/enrol", headers=csrf(user)).json()["secret"]
    assert fresh != first
    old = {"code": pyotp.TOTP(first).now()}
    assert user.post("/api/v1/auth/totp/confirm", json=old, headers=csrf(user)).status_code == 422
    code = {"code": pyotp.TOTP(fresh).now()}
    assert user.post("/api/v1/auth/totp/confirm", json=code, headers=csrf(user)).status_code == 200
    assert user.get("/api/v1/auth/me").json()["totp_enabled"] is True


def test_enrol_then_sign_in_in_two_steps(app: Any, browser: Browser, make_user: Any) -> None:
    make_user("alice")
    secret, _ = enrol(browser("alice"))
    with TestClient(app) as user:
        first = login(user)
        assert first.status_code == 200 and first.json()["status"] == "totp"
        half = first.json()["csrf_token"]
        # Half signed in: nothing but the second step.
        assert user.get("/api/v1/interfaces").status_code == 401
        assert user.get("/api/v1/auth/me").json()["stage"] == "totp"
        wrong = user.post(
            "/api/v1/auth/login/totp", json={"code": "123456"}, headers=csrf(user, half)
        )
        assert wrong.status_code == 401
        code = next_code(secret)
        done = user.post("/api/v1/auth/login/totp", json={"code": code}, headers=csrf(user, half))
        assert done.status_code == 200 and done.json()["status"] == "ok"
        assert user.get("/api/v1/interfaces").status_code == 200
        # The same code does not work twice.
        with TestClient(app) as again:
            login(again)
            reused = again.post(
                "/api/v1/auth/login/totp",
                json={"code": code},
                headers={"X-CSRF-Token": again.get("/api/v1/auth/me").json()["csrf_token"]},
            )
            assert reused.status_code == 401


def test_sign_in_in_one_call_with_the_code(
    anon: TestClient, browser: Browser, make_user: Any
) -> None:
    make_user("alice")
    secret, _ = enrol(browser("alice"))
    assert login(anon, totp="000000").status_code == 401
    response = login(anon, totp=next_code(secret))
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_recovery_code_works_once(app: Any, browser: Browser, make_user: Any) -> None:
    make_user("alice")
    _, codes = enrol(browser("alice"))
    with TestClient(app) as user:
        assert login(user, recovery_code=codes[0].upper()).json()["status"] == "ok"
        assert user.get("/api/v1/interfaces").status_code == 200
    with TestClient(app) as user:
        assert login(user, recovery_code=codes[0]).status_code == 401
        assert login(user, recovery_code=codes[1]).status_code == 200


def test_new_recovery_codes_replace_the_old(
    browser: Browser, make_user: Any, anon: TestClient
) -> None:
    make_user("alice")
    user = browser("alice")
    _, old = enrol(user)
    wrong = user.post(
        "/api/v1/auth/recovery-codes", json={"password": "nope nope nope"}, headers=csrf(user)
    )
    assert wrong.status_code == 422
    new = user.post("/api/v1/auth/recovery-codes", json={"password": PASSWORD}, headers=csrf(user))
    assert new.status_code == 200
    assert login(anon, recovery_code=old[0]).status_code == 401
    assert login(anon, recovery_code=new.json()["recovery_codes"][0]).status_code == 200


def test_disable_2fa_needs_the_password(browser: Browser, make_user: Any, anon: TestClient) -> None:
    make_user("alice")
    user = browser("alice")
    enrol(user)
    bad = user.post(
        "/api/v1/auth/totp/disable", json={"password": "wrong password!"}, headers=csrf(user)
    )
    assert bad.status_code == 422
    ok = user.post("/api/v1/auth/totp/disable", json={"password": PASSWORD}, headers=csrf(user))
    assert ok.status_code == 204
    assert login(anon).json()["status"] == "ok"


def test_required_2fa_forces_enrolment_first(
    app: Any, client: TestClient, make_user: Any, container: Container
) -> None:
    make_user("alice", totp_required=True)
    with TestClient(app) as user:
        first = login(user)
        assert first.json()["status"] == "enrol"
        token = first.json()["csrf_token"]
        assert user.get("/api/v1/interfaces").status_code == 401
        disable = user.post(
            "/api/v1/auth/totp/disable", json={"password": PASSWORD}, headers=csrf(user, token)
        )
        assert disable.status_code == 401
        enrol(user, token)
        # Confirming completed the sign-in.
        assert user.get("/api/v1/interfaces").status_code == 200
        ok = user.post(
            "/api/v1/auth/totp/disable", json={"password": PASSWORD}, headers=csrf(user, token)
        )
        assert ok.status_code == 403  # required for this account


def test_setting_requires_2fa_for_every_admin(
    app: Any, container: Container, make_user: Any
) -> None:
    make_user("root", role="admin")
    make_user("alice")
    container.auth.config = type(container.auth.config)(totp_required_for_admins=True)
    with TestClient(app) as admin:
        answer = admin.post("/api/v1/auth/login", json={"name": "root", "password": PASSWORD})
        assert answer.json()["status"] == "enrol"
    with TestClient(app) as member:
        assert login(member).json()["status"] == "ok"


def test_admin_resets_a_lost_phone(
    client: TestClient, browser: Browser, make_user: Any, anon: TestClient, container: Container
) -> None:
    make_user("alice")
    user = browser("alice")
    enrol(user)
    assert client.post("/api/v1/users/alice/reset-2fa").status_code == 204
    assert user.get("/api/v1/auth/me").status_code == 401  # sessions ended
    assert login(anon).json()["status"] == "ok"
    actions = [e.action for e in container.audit_log.list(SYSTEM, target="alice").items]
    assert "user.reset_2fa" in actions and "auth.totp.confirm" in actions


def test_totp_secret_is_encrypted_at_rest(
    browser: Browser, make_user: Any, container: Container
) -> None:
    make_user("alice")
    secret, codes = enrol(browser("alice"))
    stored = stored_bytes(container)
    assert secret.encode() not in stored
    assert not any(c.encode() in stored for c in codes)

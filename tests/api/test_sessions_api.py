"""Sign-in, sessions, CSRF, logout and lockout, as a browser and an API client see them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import PASSWORD, stored_bytes
from wirewarden.bootstrap import Container
from wirewarden.services.context import SYSTEM
from wirewarden.services.tokens import hash_token
from wirewarden.web.deps import SESSION_COOKIE

Browser = Callable[..., TestClient]


def login(client: TestClient, name: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post("/api/v1/auth/login", json={"name": name, "password": password, **extra})


def test_login_sets_a_private_session_cookie(anon: TestClient, make_user: Any) -> None:
    make_user("alice")
    response = login(anon, "alice")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["user"] == "alice" and body["role"] == "member"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    me = anon.get("/api/v1/auth/me").json()
    assert me["name"] == "alice" and me["auth"] == "session"
    assert me["csrf_token"] == body["csrf_token"]


def test_secure_cookie_behind_a_trusted_tls_proxy(
    anon: TestClient, container: Container, make_user: Any
) -> None:
    make_user("alice")
    https = {"X-Forwarded-Proto": "https"}
    response = anon.post(
        "/api/v1/auth/login", json={"name": "alice", "password": PASSWORD}, headers=https
    )
    assert "Secure" not in response.headers["set-cookie"]  # not trusted by default
    container.settings.trust_forwarded_proto = True
    response = anon.post(
        "/api/v1/auth/login", json={"name": "alice", "password": PASSWORD}, headers=https
    )
    assert "Secure" in response.headers["set-cookie"]


def test_unknown_user_and_wrong_password_look_the_same(anon: TestClient, make_user: Any) -> None:
    make_user("alice")
    wrong = login(anon, "alice", "not the password at all")
    unknown = login(anon, "nobody", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "invalid name or password"}
    assert SESSION_COOKIE not in anon.cookies


def test_cookie_change_without_csrf_token_is_403(browser: Browser, make_user: Any) -> None:
    make_user("root", role="admin")
    user = browser("root")
    body = {"name": "wg0"}
    assert user.post("/api/v1/interfaces", json=body).status_code == 403
    bad = {"X-CSRF-Token": "not-the-token"}
    assert user.post("/api/v1/interfaces", json=body, headers=bad).status_code == 403
    assert user.get("/api/v1/interfaces/wg0").status_code == 404  # nothing was made
    ok = {"X-CSRF-Token": user.csrf}  # type: ignore[attr-defined]
    assert user.post("/api/v1/interfaces", json=body, headers=ok).status_code == 201
    # Reads need no token.
    assert user.get("/api/v1/interfaces/wg0").status_code == 200


def test_csrf_token_as_a_form_field(browser: Browser, make_user: Any) -> None:
    make_user("alice")
    user = browser("alice")
    assert user.post("/api/v1/auth/logout", data={"csrf_token": "wrong"}).status_code == 403
    response = user.post("/api/v1/auth/logout", data={"csrf_token": user.csrf})  # type: ignore[attr-defined]
    assert response.status_code == 204


def test_bearer_calls_need_no_csrf_token(client: TestClient) -> None:
    assert client.post("/api/v1/interfaces", json={"name": "wg0"}).status_code == 201


def test_logout_revokes_the_session_at_once(app: Any, browser: Browser, make_user: Any) -> None:
    make_user("alice")
    user = browser("alice")
    stolen = user.cookies[SESSION_COOKIE]
    csrf = {"X-CSRF-Token": user.csrf}  # type: ignore[attr-defined]
    response = user.post("/api/v1/auth/logout", headers=csrf)
    assert response.status_code == 204
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    # The same cookie replayed by someone who copied it is refused.
    with TestClient(app, cookies={SESSION_COOKIE: stolen}) as thief:
        assert thief.get("/api/v1/auth/me").status_code == 401
        assert thief.get("/api/v1/interfaces").status_code == 401


def test_sign_out_other_sessions(browser: Browser, make_user: Any) -> None:
    make_user("alice")
    laptop, phone = browser("alice"), browser("alice")
    sessions = laptop.get("/api/v1/auth/sessions").json()
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    csrf = {"X-CSRF-Token": laptop.csrf}  # type: ignore[attr-defined]
    response = laptop.post("/api/v1/auth/sessions/revoke-others", headers=csrf)
    assert response.json() == {"revoked": 1}
    assert phone.get("/api/v1/auth/me").status_code == 401
    assert laptop.get("/api/v1/auth/me").status_code == 200
    assert len(laptop.get("/api/v1/auth/sessions").json()) == 1


def test_revoke_one_session_by_id(browser: Browser, make_user: Any) -> None:
    make_user("alice")
    make_user("bob")
    laptop, phone, bob = browser("alice"), browser("alice"), browser("bob")
    other = next(s for s in laptop.get("/api/v1/auth/sessions").json() if not s["current"])
    bobs = bob.get("/api/v1/auth/sessions").json()[0]["id"]
    csrf = {"X-CSRF-Token": laptop.csrf}  # type: ignore[attr-defined]
    # Someone else's session is not found.
    assert laptop.delete(f"/api/v1/auth/sessions/{bobs}", headers=csrf).status_code == 404
    assert laptop.delete(f"/api/v1/auth/sessions/{other['id']}", headers=csrf).status_code == 204
    assert phone.get("/api/v1/auth/me").status_code == 401
    assert bob.get("/api/v1/auth/me").status_code == 200


def test_idle_and_absolute_expiry(browser: Browser, container: Container, make_user: Any) -> None:
    from datetime import timedelta

    make_user("alice")
    user = browser("alice")
    auth = container.auth
    real = auth.clock
    now = real()
    auth.clock = lambda: now + auth.config.idle + timedelta(seconds=1)
    assert user.get("/api/v1/auth/me").status_code == 401
    auth.clock = real
    fresh = browser("alice")
    # Used every minute, it still ends at the absolute limit.
    auth.clock = lambda: now + auth.config.absolute + timedelta(seconds=1)
    with container.deps.sessions.begin() as db:
        from sqlalchemy import update

        from wirewarden.store.tables import UserSession

        db.execute(update(UserSession).values(last_seen_at=auth.clock()))
    assert fresh.get("/api/v1/auth/me").status_code == 401
    auth.clock = real


def test_disabled_user_is_refused_at_once(
    browser: Browser, client: TestClient, client_of: Any, container: Container, make_user: Any
) -> None:
    make_user("alice")
    user = browser("alice")
    token = container.tokens.create("alices", ["read"], SYSTEM, owner="alice")
    api = client_of(token)
    assert api.get("/api/v1/interfaces").status_code == 200
    response = client.patch("/api/v1/users/alice", json={"disabled": True})
    assert response.status_code == 200
    assert user.get("/api/v1/auth/me").status_code == 401
    assert api.get("/api/v1/interfaces").status_code == 401
    assert login(TestClient(user.app), "alice").status_code == 401


def test_lockout_per_account_then_per_source(
    anon: TestClient, container: Container, make_user: Any
) -> None:
    make_user("alice")
    limit = container.settings.login_max_failures
    for _ in range(limit):
        assert login(anon, "alice", "wrong password here").status_code == 401
    locked = login(anon, "alice")  # even the right password now waits
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    # An unknown name locks the same way: lockouts do not tell who exists.
    for _ in range(limit):
        assert login(anon, "ghost", "wrong password here").status_code == 401
    assert login(anon, "ghost", "wrong password here").status_code == 429
    failed = container.audit_log.list(SYSTEM, action="auth.login.failed").items
    assert {e.target for e in failed} == {"alice", "(unknown user)"}
    assert all("wrong password" not in str(e.detail) for e in failed)


def test_lockout_per_source_address(anon: TestClient, container: Container, make_user: Any) -> None:
    make_user("alice")
    per_source = container.settings.login_max_failures_per_source
    for i in range(per_source):
        assert login(anon, f"user{i}", "wrong password here").status_code == 401
    # From this address even a good login of an untouched account waits.
    assert login(anon, "alice").status_code == 429


def test_logins_are_audited_without_secrets(
    anon: TestClient, container: Container, make_user: Any
) -> None:
    make_user("alice")
    login(anon, "alice", "my wrong secret guess")
    login(anon, "alice")
    events = container.audit_log.list(SYSTEM, action="auth.login").items
    assert [e.action for e in events] == ["auth.login", "auth.login.failed"]
    assert events[0].actor == "alice" and events[0].source == "testclient"
    with container.engine.connect() as conn:
        from sqlalchemy import text

        dump = str(conn.execute(text("select * from audit_events")).all())
    assert PASSWORD not in dump and "my wrong secret guess" not in dump


def test_sessions_and_tokens_are_stored_hashed(
    anon: TestClient, container: Container, make_user: Any
) -> None:
    make_user("alice")
    login(anon, "alice")
    cookie = anon.cookies[SESSION_COOKIE]
    stored = stored_bytes(container)
    assert cookie.encode() not in stored
    assert hash_token(cookie).encode() in stored
    assert PASSWORD.encode() not in stored

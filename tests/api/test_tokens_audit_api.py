"""API tokens owned by users, and the audit log with its filters and pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container
from wirewarden.services.context import SYSTEM

Browser = Callable[..., TestClient]


def csrf(user: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": user.csrf}  # type: ignore[attr-defined]


def test_user_makes_lists_and_revokes_own_tokens(
    browser: Browser, client_of: Any, make_user: Any, container: Container
) -> None:
    make_user("alice")
    make_user("bob")
    alice, bob = browser("alice"), browser("bob")
    made = alice.post(
        "/api/v1/tokens", json={"name": "laptop", "scopes": ["read"]}, headers=csrf(alice)
    )
    assert made.status_code == 201
    body = made.json()
    assert body["user"] == "alice" and body["scopes"] == ["read"]
    token = body["token"]
    assert token.startswith("ww_")
    # Shown once: the list has only a prefix.
    listed = alice.get("/api/v1/tokens").json()
    assert [(t["name"], t["user"], t["prefix"]) for t in listed] == [
        ("laptop", "alice", token[:10])
    ]
    assert token not in str(listed)
    assert bob.get("/api/v1/tokens").json() == []
    # Bob cannot revoke it; it is not even found.
    assert bob.delete("/api/v1/tokens/laptop", headers=csrf(bob)).status_code == 404
    api = client_of(token)
    assert api.get("/api/v1/auth/me").json()["name"] == "alice"
    assert alice.delete("/api/v1/tokens/laptop", headers=csrf(alice)).status_code == 204
    assert api.get("/api/v1/auth/me").status_code == 401  # at once


def test_token_scopes_cannot_grow(client_of: Any, make_user: Any, container: Container) -> None:
    make_user("alice")
    reader = client_of(container.tokens.create("ro", ["read"], SYSTEM, owner="alice"))
    response = reader.post("/api/v1/tokens", json={"name": "more", "scopes": ["write"]})
    assert response.status_code == 403
    admin_scoped = client_of(container.tokens.create("adm", ["admin"], SYSTEM, owner="alice"))
    made = admin_scoped.post("/api/v1/tokens", json={"name": "rw", "scopes": ["read", "write"]})
    assert made.status_code == 201


def test_only_admins_make_tokens_for_others(
    client: TestClient, browser: Browser, make_user: Any
) -> None:
    make_user("alice")
    make_user("bob")
    alice = browser("alice")
    body = {"name": "for-bob", "scopes": ["read"], "user": "bob"}
    assert alice.post("/api/v1/tokens", json=body, headers=csrf(alice)).status_code == 403
    made = client.post("/api/v1/tokens", json=body)
    assert made.status_code == 201 and made.json()["user"] == "bob"
    assert {t["name"] for t in client.get("/api/v1/tokens").json()} >= {"for-bob", "tests"}
    bad = client.post("/api/v1/tokens", json={"name": "x", "scopes": ["root"]})
    assert bad.status_code == 422


def test_audit_log_filters_and_pages(client: TestClient, container: Container) -> None:
    client.post("/api/v1/interfaces", json={"name": "wg0"})
    for name in ("a", "b", "c"):
        client.post("/api/v1/interfaces/wg0/peers", json={"name": name})
    client.patch("/api/v1/peers/1", json={"enabled": False})
    page = client.get("/api/v1/audit", params={"action": "peer.", "limit": 2}).json()
    assert page["total"] == 4 and len(page["items"]) == 2
    assert [e["action"] for e in page["items"]] == ["peer.update", "peer.create"]  # newest first
    rest = client.get("/api/v1/audit", params={"action": "peer.", "limit": 2, "offset": 2}).json()
    assert [e["target"] for e in rest["items"]] == ["wg0/b", "wg0/a"]
    only = client.get("/api/v1/audit", params={"action": "peer.create", "target": "wg0/c"}).json()
    assert only["total"] == 1 and only["items"][0]["actor"] == "token:tests"
    assert only["items"][0]["detail"]["via"] == "token:tests"
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert client.get("/api/v1/audit", params={"since": soon}).json()["total"] == 0
    assert client.get("/api/v1/audit", params={"until": soon}).json()["total"] >= 5
    by_actor = client.get("/api/v1/audit", params={"actor": "nobody"}).json()
    assert by_actor["total"] == 0
    assert client.get("/api/v1/audit", params={"limit": 0}).status_code == 422


def test_members_read_only_their_own_audit_events(
    client: TestClient, browser: Browser, make_user: Any
) -> None:
    make_user("alice")
    client.post("/api/v1/interfaces", json={"name": "wg0"})
    alice = browser("alice")
    alice.post("/api/v1/interfaces/wg0/peers", json={"name": "phone"}, headers=csrf(alice))
    mine = alice.get("/api/v1/audit").json()
    assert {e["actor"] for e in mine["items"]} == {"alice"}
    assert {e["action"] for e in mine["items"]} == {"auth.login", "peer.create"}
    assert "interface.create" in {e["action"] for e in client.get("/api/v1/audit").json()["items"]}


def test_every_change_is_audited_with_source(
    client: TestClient, browser: Browser, make_user: Any, container: Container
) -> None:
    make_user("alice")
    alice = browser("alice")
    alice.post("/api/v1/auth/sessions/revoke-others", headers=csrf(alice))
    client.post("/api/v1/users", json={"name": "carol", "password": "a long enough passphrase"})
    client.patch("/api/v1/users/carol", json={"device_limit": 1})
    client.post("/api/v1/users/carol/reset-2fa")
    client.delete("/api/v1/users/carol")
    events = container.audit_log.list(SYSTEM, limit=50).items
    actions = [e.action for e in events]
    for action in (
        "auth.login",
        "auth.session.revoke_others",
        "user.create",
        "user.update",
        "user.reset_2fa",
        "user.delete",
    ):
        assert action in actions
    assert all(e.source for e in events)
    assert "a long enough passphrase" not in str([(e.detail, e.target) for e in events])

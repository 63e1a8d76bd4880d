"""/api/v1/nodes and `wirewarden node`: adding a node gives a one-time join token; the
list shows place, load, status and revisions; admins only; a fleet needs PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container
from wirewarden.services.context import SYSTEM

API = "/api/v1"


def test_a_second_node_on_sqlite_points_at_db_copy(
    client: TestClient, database_url: str | None
) -> None:
    if database_url is not None:
        pytest.skip("SQLite's refusal")
    answer = client.post(f"{API}/nodes", json={"name": "fra1", "region": "eu"})
    assert answer.status_code == 409
    assert "wirewarden db copy --to postgresql" in answer.json()["detail"]
    assert [n["name"] for n in client.get(f"{API}/nodes").json()] == ["local"]


def test_add_list_patch_remove(client: TestClient, database_url: str | None) -> None:
    if database_url is None:
        pytest.skip("a fleet runs on PostgreSQL")
    body = {"name": "fra1", "region": "eu", "capacity": 5000, "country": "de"}
    body |= {"city": "Frankfurt", "lat": 50.11, "lon": 8.68}
    made = client.post(f"{API}/nodes", json=body)
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["join_token"].startswith("wwj_") and len(created["join_token"]) > 40
    assert created["country"] == "DE" and created["status"] == "pending"
    listed = {n["name"]: n for n in client.get(f"{API}/nodes").json()}
    fra1 = listed["fra1"]
    assert "join_token" not in fra1  # shown once, at creation
    assert (fra1["capacity"], fra1["peers"], fra1["load"]) == (5000, 0, 0.0)
    assert (fra1["revision"], fra1["applied_revision"], fra1["last_seen"]) == (0, 0, None)
    assert listed["local"]["local"] is True
    patched = client.patch(f"{API}/nodes/fra1", json={"drain": True, "capacity": 10})
    assert patched.json()["drain"] is True and patched.json()["capacity"] == 10
    assert patched.json()["public_host"] is None
    public = client.patch(f"{API}/nodes/fra1", json={"public_host": "[2001:db8::7]"})
    assert public.json()["public_host"] == "2001:db8::7"
    again = client.post(f"{API}/nodes/fra1/join-token", json={"hours": 2})
    assert again.status_code == 201 and again.json()["join_token"] != created["join_token"]
    assert client.post(f"{API}/nodes", json={"name": "fra1"}).status_code == 409
    assert client.delete(f"{API}/nodes/fra1").status_code == 204
    assert client.get(f"{API}/nodes/fra1").status_code == 404
    assert client.delete(f"{API}/nodes/local").status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"name": "n1", "capacity": 0}, "capacity"),
        ({"name": "n1", "country": "Germany"}, "country"),
        ({"name": "n1", "lat": 91}, "lat"),
        ({"name": "n1", "region": "EU west"}, "region"),
        ({"name": "n1", "public_host": "n1.example.com:80"}, "public_host"),
        ({"name": "n1", "public_host": "n1 example com"}, "public_host"),
        ({"name": "n1", "public_host": "n1.example.com\nX: y"}, "public_host"),
    ],
)
def test_bad_input_names_the_field(client: TestClient, body: dict[str, object], field: str) -> None:
    answer = client.post(f"{API}/nodes", json=body)
    assert answer.status_code == 422
    assert field in str(answer.json()["detail"])


def test_tenant_users_cannot_see_or_change_nodes(
    client: TestClient,
    container: Container,
    make_user: Callable[..., str],
    client_of: Callable[[str], TestClient],
) -> None:
    assert client.post(f"{API}/tenants", json={"name": "acme"}).status_code == 201
    make_user("alice", "tenant-admin", tenant="acme")
    token = container.tokens.create("alice-t", ["read", "write", "admin"], SYSTEM, "alice")
    alice = client_of(token)
    assert alice.get(f"{API}/nodes").status_code == 403
    assert alice.get(f"{API}/nodes/local").status_code == 403
    assert alice.post(f"{API}/nodes", json={"name": "evil"}).status_code == 403
    assert alice.patch(f"{API}/nodes/local", json={"drain": True}).status_code == 403
    assert alice.post(f"{API}/nodes/local/join-token").status_code == 403
    assert client.get(f"{API}/nodes/local").json()["drain"] is False

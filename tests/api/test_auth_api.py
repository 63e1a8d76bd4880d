"""Authentication and scopes: every /api/v1 route, taken from the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import stored_bytes
from wirewarden import __version__
from wirewarden.bootstrap import Container
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.services.context import SYSTEM
from wirewarden.web.app import create_app

METHODS = ("get", "post", "put", "patch", "delete")
# The public operations under /api/v1 (DESIGN.md §5, §8: login; share links and /healthz
# are outside it), and the agent's enrolment, by the join token in its body.
PUBLIC = {("post", "/api/v1/auth/login"), ("post", "/api/v1/agent/enrol")}
WRITES = ("post", "put", "patch", "delete")
# Routes of node agents: a user's token, whatever its scopes, is not their credential (401).
AGENT = "/api/v1/agent/"


@pytest.fixture
def peer_id(client: TestClient) -> int:
    """A real interface and peer, so a route that skipped authentication would succeed."""
    assert client.post("/api/v1/interfaces", json={"name": "wg0"}).status_code == 201
    response = client.post("/api/v1/interfaces/wg0/peers", json={"name": "laptop"})
    assert response.status_code == 201
    result: int = response.json()["id"]
    return result


def api_routes(client: TestClient, peer_id: int) -> list[tuple[str, str]]:
    """(method, concrete URL) of every operation under /api/v1 in the OpenAPI document."""
    values = {"name": "wg0", "peer_id": str(peer_id), "id": str(peer_id)}
    routes = []
    paths: dict[str, dict[str, Any]] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    for path, operations in paths.items():
        if not path.startswith("/api/v1/"):
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)
        routes += [
            (method, url)
            for method in operations
            if method in METHODS and (method, url) not in PUBLIC
        ]
    return routes


def call(client: TestClient, method: str, url: str, **kwargs: Any) -> Any:
    body = {"json": {}} if method in ("post", "put", "patch") else {}
    return client.request(method, url, **body, **kwargs)


@pytest.fixture
def client_with(container: Container) -> Iterator[Any]:
    """A client factory for an arbitrary Authorization header (or none)."""
    app = create_app(container, run_loop=False)
    opened: list[TestClient] = []

    def make(token: str | None, scheme: str = "Bearer") -> TestClient:
        headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
        test_client = TestClient(app, headers=headers)
        opened.append(test_client)
        return test_client

    yield make
    for test_client in opened:
        test_client.close()


def test_openapi_lists_the_documented_routes(client: TestClient, peer_id: int) -> None:
    routes = set(api_routes(client, peer_id))
    expected = {
        ("get", "/api/v1/interfaces"),
        ("post", "/api/v1/interfaces"),
        ("get", "/api/v1/interfaces/wg0"),
        ("patch", "/api/v1/interfaces/wg0"),
        ("delete", "/api/v1/interfaces/wg0"),
        ("get", "/api/v1/interfaces/wg0/peers"),
        ("post", "/api/v1/interfaces/wg0/peers"),
        ("get", f"/api/v1/peers/{peer_id}"),
        ("patch", f"/api/v1/peers/{peer_id}"),
        ("delete", f"/api/v1/peers/{peer_id}"),
        ("get", f"/api/v1/peers/{peer_id}/config"),
        ("get", f"/api/v1/peers/{peer_id}/qr"),
    }
    assert expected <= routes


@pytest.mark.parametrize(
    ("credential", "scheme"),
    [
        (None, "Bearer"),
        ("ww_" + "A" * 43, "Bearer"),
        ("not-even-our-prefix", "Bearer"),
        ("", "Bearer"),
        ("dGVzdHM6c2VjcmV0", "Basic"),
    ],
    ids=["no-header", "bogus-token", "foreign-token", "empty-token", "basic-auth"],
)
def test_every_route_refuses_without_valid_credentials(
    client: TestClient,
    client_with: Any,
    dataplane: FakeDataplane,
    peer_id: int,
    credential: str | None,
    scheme: str,
) -> None:
    stranger: TestClient = client_with(credential, scheme)
    routes = api_routes(client, peer_id)
    before = client.get("/api/v1/interfaces").json()
    refused = {}
    for method, url in routes:
        response = call(stranger, method, url)
        refused[(method, url)] = response.status_code
        if response.status_code == 401:
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json() == {"detail": "missing or invalid credentials"}
    assert refused == dict.fromkeys(routes, 401)
    # Nothing was changed, in the database or the data plane.
    assert client.get("/api/v1/interfaces").json() == before
    assert client.get(f"/api/v1/peers/{peer_id}").status_code == 200
    assert len(dataplane.devices["wg0"].peers) == 1


def test_every_route_refuses_a_forged_or_ended_session(
    app: Any, client: TestClient, browser: Any, make_user: Any, peer_id: int
) -> None:
    """Cookie sessions: a made-up cookie, and a real one after logout, on every route."""
    make_user("root", role="admin")
    user = browser("root")
    ended = user.cookies["ww_session"]
    csrf = {"X-CSRF-Token": user.csrf}
    assert user.post("/api/v1/auth/logout", headers=csrf).status_code == 204
    routes = api_routes(client, peer_id)
    for cookie in ("forged-" + "A" * 40, ended):
        with TestClient(app, cookies={"ww_session": cookie}, headers=csrf) as stranger:
            refused = {(m, u): call(stranger, m, u).status_code for m, u in routes}
        assert refused == dict.fromkeys(routes, 401)
    assert client.get(f"/api/v1/peers/{peer_id}").status_code == 200


def test_healthz_needs_no_credentials(anon: TestClient) -> None:
    response = anon.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_read_only_token_reads_but_cannot_change(
    client: TestClient, client_with: Any, container: Container, peer_id: int
) -> None:
    reader: TestClient = client_with(container.tokens.create("ro", ["read"], SYSTEM))
    assert reader.get("/api/v1/interfaces").status_code == 200
    assert reader.get("/api/v1/interfaces/wg0").status_code == 200
    assert reader.get("/api/v1/interfaces/wg0/peers").status_code == 200
    assert reader.get(f"/api/v1/peers/{peer_id}").status_code == 200
    before = client.get("/api/v1/interfaces/wg0/peers").json()
    for method, url in api_routes(client, peer_id):
        if method in WRITES and not url.startswith(AGENT):
            response = call(reader, method, url)
            assert response.status_code == 403, (method, url)
            assert "scope" in response.json()["detail"]
    # A client config holds a private key: reading one takes the write scope.
    for suffix in ("config", "qr"):
        assert reader.get(f"/api/v1/peers/{peer_id}/{suffix}").status_code == 403
    assert reader.get("/api/v1/interfaces/wg0/config").status_code == 403
    response = reader.post("/api/v1/interfaces", json={"name": "wg9"})
    assert response.status_code == 403
    assert client.get("/api/v1/interfaces/wg9").status_code == 404
    assert client.get("/api/v1/interfaces/wg0/peers").json() == before


def test_write_token_without_read_scope(client_with: Any, container: Container) -> None:
    writer: TestClient = client_with(container.tokens.create("rw", ["write"], SYSTEM))
    assert writer.post("/api/v1/interfaces", json={"name": "wg0"}).status_code == 201
    assert writer.get("/api/v1/interfaces").status_code == 403


def test_revoked_token_is_refused(client_with: Any, container: Container) -> None:
    token = container.tokens.create("temp", ["read", "write"], SYSTEM)
    user: TestClient = client_with(token)
    assert user.get("/api/v1/interfaces").status_code == 200
    container.tokens.revoke("temp", SYSTEM)
    response = user.get("/api/v1/interfaces")
    assert response.status_code == 401
    assert user.post("/api/v1/interfaces", json={"name": "wg0"}).status_code == 401


def test_tokens_are_stored_hashed(container: Container) -> None:
    token = container.tokens.create("secret", ["read"], SYSTEM)
    stored = stored_bytes(container)
    assert token.encode() not in stored
    assert container.tokens.authenticate(token) is not None
    listed = {t.name: t for t in container.tokens.list()}
    assert listed["secret"].prefix == token[:10]
    assert listed["secret"].revoked is False

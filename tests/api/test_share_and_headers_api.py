"""One-time share links, security headers, and the schema behind authentication."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container
from wirewarden.services.context import SYSTEM


@pytest.fixture
def peer_id(client: TestClient) -> int:
    assert client.post("/api/v1/interfaces", json={"name": "wg0"}).status_code == 201
    response = client.post("/api/v1/interfaces/wg0/peers", json={"name": "laptop"})
    result: int = response.json()["id"]
    return result


def test_share_link_works_once(
    client: TestClient, anon: TestClient, container: Container, peer_id: int
) -> None:
    created = client.post(f"/api/v1/peers/{peer_id}/share", json={})
    assert created.status_code == 201
    link = created.json()["url"]
    # Absolute, at the public URL (here made from the listen address): it goes into chats.
    assert link.startswith("http://127.0.0.1:8000/s/") and len(link) > 60
    url = link.removeprefix("http://127.0.0.1:8000")
    # Looking at the link (a chat preview) does not use it up.
    landing = anon.get(url)
    assert landing.status_code == 200 and "Reveal" in landing.text
    assert anon.get(url).status_code == 200
    shown = anon.post(url)
    assert shown.status_code == 200
    expected, _ = container.peers.config(peer_id)
    assert "<svg" in shown.text
    # Styled like the dashboard, with a download, a copy button and the apps to get.
    assert '<link rel="stylesheet" href="/static/app.css">' in shown.text
    assert 'download="' in shown.text and "data:text/plain;base64," in shown.text
    assert "data-copy=" in shown.text and "Copy the configuration" in shown.text
    assert "play.google.com/store/apps/details?id=com.wireguard.android" in shown.text
    assert "apps.apple.com/app/wireguard/id1441195209" in shown.text
    assert all(html.escape(line) in shown.text for line in expected.splitlines())
    # Then never again, in either form.
    assert anon.get(url).status_code == 404
    again = anon.post(url)
    assert again.status_code == 404 and "PrivateKey" not in again.text
    assert anon.post(url + "?format=conf").status_code == 404
    events = container.audit_log.list(SYSTEM, action="share.").items
    assert [e.action for e in events] == ["share.open", "share.create"]
    assert events[0].target == "wg0/laptop"
    assert url.removeprefix("/s/") not in str([e.detail for e in events])


def test_share_link_as_a_file_for_scripts(
    client: TestClient, anon: TestClient, container: Container, peer_id: int
) -> None:
    link = client.post(f"/api/v1/peers/{peer_id}/share", json={"hours": 1}).json()["url"]
    url = urlsplit(link).path
    response = anon.post(url + "?format=conf")
    assert response.status_code == 200
    assert response.text == container.peers.config(peer_id)[0]
    assert "attachment" in response.headers["content-disposition"]


def test_share_link_expires(
    client: TestClient, anon: TestClient, container: Container, peer_id: int
) -> None:
    url = urlsplit(client.post(f"/api/v1/peers/{peer_id}/share", json={}).json()["url"]).path
    shares = container.shares
    real = shares.clock
    shares.clock = lambda: real() + timedelta(hours=24, seconds=1)
    try:
        assert anon.get(url).status_code == 404
        assert anon.post(url).status_code == 404
    finally:
        shares.clock = real
    assert anon.post(url).status_code == 200  # unused and in time: still good


def test_unknown_share_link(anon: TestClient) -> None:
    assert anon.get("/s/not-a-real-token").status_code == 404
    assert anon.post("/s/not-a-real-token").status_code == 404


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/interfaces", "/s/nothing", "/nowhere"])
def test_security_headers_on_every_response(anon: TestClient, path: str) -> None:
    headers = anon.get(path).headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"


def test_schema_and_docs_need_authentication(anon: TestClient, client: TestClient) -> None:
    assert anon.get("/openapi.json").status_code == 401
    assert anon.get("/docs").status_code == 401
    assert anon.get("/redoc").status_code == 404
    schema = client.get("/openapi.json")
    assert schema.status_code == 200 and "/api/v1/peers/{peer_id}" in schema.json()["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "<script" not in docs.text
    assert "/api/v1/peers/{peer_id}/config" in docs.text and "PeerCreate" in docs.text


def test_session_cookie_reads_the_schema(
    browser: Callable[..., TestClient], make_user: Any
) -> None:
    make_user("alice")
    assert browser("alice").get("/openapi.json").status_code == 200

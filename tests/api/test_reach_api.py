"""Reaching the dashboard through the ASGI app: Secure cookies over HTTPS, HSTS, share
links at the public URL, forwarded headers only from trusted proxies, and the first
admin's password file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container, build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.services.context import SYSTEM, Actor
from wirewarden.services.schemas import InterfaceCreate, PeerCreate
from wirewarden.web.app import create_app
from wirewarden.web.ui.signin import LOGIN_CSRF_COOKIE

PASSWORD = "a long enough passphrase"
Make = Callable[..., Container]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    built: list[Container] = []

    def make_container(**settings: Any) -> Container:
        data = tmp_path / f"data{len(built)}"
        container = build(Settings(data_dir=data, **settings), dataplane=FakeDataplane())
        built.append(container)
        first = container.users.ensure_first_admin(PASSWORD, Actor("system", "test"))
        assert first is not None
        return container

    yield make_container
    for container in built:
        container.engine.dispose()


def client(container: Container, **kwargs: Any) -> TestClient:
    return TestClient(create_app(container, run_loop=False), **kwargs)


def login(test_client: TestClient, **kwargs: Any) -> Any:
    body = {"name": "admin", "password": PASSWORD}
    return test_client.post("/api/v1/auth/login", json=body, **kwargs)


def test_cookies_are_secure_over_https_only(make: Make) -> None:
    container = make()
    with client(container, base_url="https://vpn.example.test") as https:
        page = https.get("/login")
        assert LOGIN_CSRF_COOKIE in page.headers["set-cookie"]
        assert "secure" in page.headers["set-cookie"].lower()
        assert "secure" in login(https).headers["set-cookie"].lower()
    with client(container) as http:
        assert "secure" not in http.get("/login").headers["set-cookie"].lower()
        assert "secure" not in login(http).headers["set-cookie"].lower()


def test_hsts_when_configured_and_only_over_https(make: Make, tmp_path: Path) -> None:
    with client(make(hsts=True), base_url="https://vpn.example.test") as https:
        assert https.get("/healthz").headers["strict-transport-security"] == "max-age=31536000"
    with client(make(hsts=True)) as http:
        assert "strict-transport-security" not in http.get("/healthz").headers
    # By default only with a real certificate (not behind a self-signed one).
    with client(make(http="0.0.0.0:443"), base_url="https://x.test") as self_signed:
        assert "strict-transport-security" not in self_signed.get("/healthz").headers
    real = make(tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem")
    with client(real, base_url="https://x.test") as with_cert:
        assert "strict-transport-security" in with_cert.get("/healthz").headers


def test_share_links_use_the_public_url(make: Make) -> None:
    container = make(public_url="https://vpn.example.com/", public_host="vpn.example.com")
    container.interfaces.create(InterfaceCreate(name="wg0", address="10.8.0.1/24"), SYSTEM)
    peer = container.peers.create("wg0", PeerCreate(name="laptop"), SYSTEM)
    # Whatever Host the creator's request carried.
    with client(container, base_url="http://127.0.0.1:8000") as admin:
        csrf = login(admin).json()["csrf_token"]
        made = admin.post(f"/api/v1/peers/{peer.id}/share", json={}, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201, made.text
        link = made.json()["url"]
        assert link.startswith("https://vpn.example.com/s/")
        page = admin.post(f"/peers/{peer.id}/share", data={"csrf_token": csrf})
        assert 'value="https://vpn.example.com/s/' in page.text


SPOOF = {"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"}


def last_login_source(container: Container) -> str:
    events = container.audit_log.list(SYSTEM, action="auth.login").items
    return events[0].source


def test_forwarded_headers_are_ignored_by_default(make: Make) -> None:
    container = make()
    with client(container, client=("127.0.0.1", 40000)) as direct:
        response = login(direct, headers=SPOOF)
    assert last_login_source(container) == "127.0.0.1"
    assert "secure" not in response.headers["set-cookie"].lower()


def test_forwarded_headers_count_from_a_trusted_proxy_only(make: Make) -> None:
    container = make(trusted_proxies="10.0.0.0/24")
    with client(container, client=("10.0.0.7", 40000)) as proxy:
        response = login(proxy, headers={**SPOOF, "X-Forwarded-Host": "vpn.example.com"})
        assert "secure" in response.headers["set-cookie"].lower()
        seen = proxy.get("/healthz", headers={"X-Forwarded-Host": "vpn.example.com"})
        assert seen.status_code == 200
    assert last_login_source(container) == "198.51.100.9"
    with client(container, client=("10.0.1.7", 40000)) as stranger:
        response = login(stranger, headers=SPOOF)
        assert "secure" not in response.headers["set-cookie"].lower()
    assert last_login_source(container) == "10.0.1.7"


def test_forwarded_host_counts_for_the_live_socket_origin(make: Make) -> None:
    """A proxy that sends its own Host but the client's as X-Forwarded-Host: the live
    socket's same-origin check sees the client's."""
    container = make(trusted_proxies="10.0.0.7")
    headers = {
        "Host": "127.0.0.1:8000",
        "X-Forwarded-Host": "vpn.example.com",
        "Origin": "https://vpn.example.com",
    }
    with client(container, client=("10.0.0.7", 40000)) as proxy:
        assert login(proxy).status_code == 200
        with proxy.websocket_connect("/ws/status", headers=headers) as socket:
            socket.send_json({"watch": [], "overview": True})
            assert socket.receive_json()["totals"]["peers"] == 0
    with client(container, client=("10.0.0.8", 40000)) as stranger:
        assert login(stranger).status_code == 200
        with stranger.websocket_connect("/ws/status", headers=headers) as socket:
            closed = socket.receive()
    assert closed["type"] == "websocket.close" and closed["code"] == 4403


def test_the_public_url_is_a_valid_socket_origin(make: Make) -> None:
    container = make(public_url="https://vpn.example.com")
    headers = {"Host": "127.0.0.1:8000", "Origin": "https://vpn.example.com"}
    with client(container) as browser:
        assert login(browser).status_code == 200
        with browser.websocket_connect("/ws/status", headers=headers) as socket:
            socket.send_json({"watch": [], "overview": True})
            assert socket.receive_json()["totals"]["peers"] == 0


def test_initial_password_file_is_deleted_at_first_sign_in(make: Make) -> None:
    container = make()
    initial = container.initial_password
    assert initial is not None
    initial.write(PASSWORD)
    with client(container) as browser:
        bad = browser.post("/api/v1/auth/login", json={"name": "admin", "password": "wrong one!"})
        assert bad.status_code == 401 and initial.pending()
        assert login(browser).status_code == 200
    assert not initial.path.exists()

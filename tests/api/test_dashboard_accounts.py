"""Dashboard pages of the accounts side: roles, account, users, tokens, audit, sign-out,
share links and the live socket's session check, over the ASGI app."""

from __future__ import annotations

from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.api.test_dashboard_pages import PASSWORD, csrf_of, sign_in
from wirewarden.bootstrap import Container
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import InterfaceCreate, PeerCreate
from wirewarden.store.tables import User
from wirewarden.web.app import create_app

ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def app_client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, run_loop=False)) as client:
        yield client


@pytest.fixture
def people(container: Container) -> Container:
    users = container.users
    users.create(UserCreate(name="root", role="admin", password=PASSWORD), SYSTEM)
    users.create(UserCreate(name="mia", role="member", password=PASSWORD), SYSTEM)
    users.create(UserCreate(name="max", role="member", password=PASSWORD), SYSTEM)
    container.interfaces.create(
        InterfaceCreate(name="wg0", address="10.9.0.1/24", endpoint="vpn.example.test"), SYSTEM
    )
    return container


def test_member_sees_and_manages_only_own_devices(
    people: Container, app_client: TestClient
) -> None:
    mine = people.peers.create("wg0", PeerCreate(name="mia-phone", owner="mia"), SYSTEM)
    theirs = people.peers.create("wg0", PeerCreate(name="max-laptop", owner="max"), SYSTEM)
    csrf = sign_in(app_client, "mia")
    overview = app_client.get("/").text
    assert 'data-total="peers">1<' in overview
    table = app_client.get("/interfaces/wg0").text
    assert "mia-phone" in table and "max-laptop" not in table
    assert app_client.get(f"/peers/{theirs.id}").status_code == 404
    assert app_client.get(f"/peers/{theirs.id}/config").status_code == 404
    assert app_client.get(f"/peers/{mine.id}/config").status_code == 200
    gone = app_client.post(f"/peers/{theirs.id}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 404
    assert people.peers.get(theirs.id).name == "max-laptop"
    assert app_client.get("/users").status_code == 403
    assert app_client.get("/interfaces/new").status_code == 403
    # A member's own device: created as theirs, without the admin-only fields.
    form = app_client.get("/interfaces/wg0/peers/new").text
    assert 'name="routed_ips"' not in form and 'name="owner"' not in form
    made = app_client.post(
        "/interfaces/wg0/peers/new",
        data={"name": "mia-tablet", "allowed_ips": "0.0.0.0/0", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert made.status_code == 303
    assert people.peers.find_by_name("wg0", "mia-tablet").owner == "mia"


def test_live_socket_needs_a_session_and_narrows_to_own_peers(
    people: Container, app_client: TestClient
) -> None:
    mine = people.peers.create("wg0", PeerCreate(name="mia-phone", owner="mia"), SYSTEM)
    theirs = people.peers.create("wg0", PeerCreate(name="max-laptop", owner="max"), SYSTEM)
    with app_client.websocket_connect("/ws/status", headers=ORIGIN) as socket:
        assert socket.receive()["code"] == 4401  # no session
    sign_in(app_client, "mia")
    with app_client.websocket_connect("/ws/status", headers=ORIGIN) as socket:
        socket.send_json({"watch": [mine.id, theirs.id], "overview": True})
        message = socket.receive_json()
    assert set(message["peers"]) == {str(mine.id)}
    assert message["totals"]["peers"] == 1


def test_sign_out_revokes_the_session(people: Container, app_client: TestClient) -> None:
    csrf = sign_in(app_client, "root")
    cookie = app_client.cookies["ww_session"]
    out = app_client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    app_client.cookies.set("ww_session", cookie)  # a copy kept by an attacker
    again = app_client.get("/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/login")


def test_login_form_needs_its_own_cookie_token(people: Container, app_client: TestClient) -> None:
    answer = app_client.post(
        "/login", data={"name": "root", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert answer.status_code == 403
    assert "ww_session" not in app_client.cookies


def test_login_goes_back_only_to_this_site(people: Container, app_client: TestClient) -> None:
    form = app_client.get("/login?next=https://evil.test/").text
    assert 'name="next" value="/"' in form
    answer = app_client.post(
        "/login",
        data={
            "name": "root",
            "password": PASSWORD,
            "next": "//evil.test",
            "csrf_token": csrf_of(form),
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/"


def test_account_password_2fa_and_sessions(people: Container, app_client: TestClient) -> None:
    csrf = sign_in(app_client, "root")
    page = app_client.get("/account").text
    assert "this one" in page and "Set up two-factor sign-in" in page
    wrong = app_client.post(
        "/account/password",
        data={"current_password": "nope-nope-nope", "new_password": "x", "csrf_token": csrf},
    )
    assert wrong.status_code == 422 and 'id="e-current_password"' in wrong.text
    enrol = app_client.post("/account/2fa/enrol", data={"csrf_token": csrf})
    secret = enrol.text.split("data-totp-secret>", 1)[1].split("<", 1)[0]
    confirmed = app_client.post(
        "/account/2fa/confirm", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf}
    )
    assert confirmed.status_code == 200 and confirmed.text.count("<li>") >= 10
    with people.deps.sessions() as db:
        assert db.scalar(select(User.totp_enabled).where(User.name == "root")) is True

    other = TestClient(app_client.app)
    sign_in_with_code(other, "root", secret)
    assert len(people.auth.list_sessions(user_id(people, "root"))) == 2
    app_client.post("/account/sessions/revoke-others", data={"csrf_token": csrf})
    assert other.get("/", follow_redirects=False).status_code == 303
    assert app_client.get("/", follow_redirects=False).status_code == 200


def sign_in_with_code(client: TestClient, name: str, secret: str) -> None:
    import time

    form = client.get("/login").text
    step = client.post(
        "/login",
        data={"name": name, "password": PASSWORD, "next": "/", "csrf_token": csrf_of(form)},
    )
    assert "/login/2fa" in str(step.url)
    code = pyotp.TOTP(secret).at(time.time() + 30)
    done = client.post(
        "/login/2fa", data={"code": code, "next": "/", "csrf_token": csrf_of(step.text)}
    )
    assert str(done.url).endswith("/"), done.text


def user_id(container: Container, name: str) -> int:
    with container.deps.sessions() as db:
        found = db.scalar(select(User.id).where(User.name == name))
        assert found is not None
        return found


def test_users_page_creates_with_field_errors(people: Container, app_client: TestClient) -> None:
    csrf = sign_in(app_client, "root")
    page = app_client.get("/users").text
    assert 'data-user="mia"' in page
    bad = app_client.post(
        "/users",
        data={"name": "Bad Name", "role": "member", "password": "short", "csrf_token": csrf},
    )
    assert bad.status_code == 422 and 'id="e-name"' in bad.text
    weak = app_client.post(
        "/users", data={"name": "ola", "role": "member", "password": "short", "csrf_token": csrf}
    )
    assert weak.status_code == 422 and 'id="e-password"' in weak.text
    ok = app_client.post(
        "/users",
        data={
            "name": "ola",
            "role": "member",
            "password": "a-long-fine-passphrase",
            "device_limit": "3",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert people.users.get("ola", SYSTEM).device_limit == 3
    app_client.post("/users/ola/disable", data={"csrf_token": csrf})
    assert people.users.get("ola", SYSTEM).disabled is True
    app_client.post("/users/ola/delete", data={"csrf_token": csrf})
    assert 'data-user="ola"' not in app_client.get("/users").text


def test_tokens_shown_once_then_revoked(people: Container, app_client: TestClient) -> None:
    csrf = sign_in(app_client, "mia")
    made = app_client.post(
        "/tokens", data={"name": "laptop-script", "scopes": ["read"], "csrf_token": csrf}
    )
    assert made.status_code == 201
    token = made.text.split("data-new-token", 1)[0].rsplit('value="', 1)[1].split('"', 1)[0]
    assert token.startswith("ww_")
    assert token not in app_client.get("/tokens").text  # never shown again
    api = TestClient(app_client.app, headers={"Authorization": f"Bearer {token}"})
    assert api.get("/api/v1/interfaces").status_code == 200
    app_client.post("/tokens/laptop-script/revoke", data={"csrf_token": csrf})
    assert api.get("/api/v1/interfaces").status_code == 401


def test_audit_page_filters(people: Container, app_client: TestClient) -> None:
    people.peers.create("wg0", PeerCreate(name="laptop"), SYSTEM)
    sign_in(app_client, "root")
    page = app_client.get("/audit?action=peer.").text
    assert "peer.create" in page and "wg0/laptop" in page
    assert "interface.create" not in page
    assert "auth.login" in app_client.get("/audit").text
    # details read as key and value, never Python's repr of a dict or list
    assert "{'" not in page and "['" not in page and '<dl class="detail">' in page


def test_share_link_from_the_peer_page_works_once(
    people: Container, app_client: TestClient
) -> None:
    peer = people.peers.create("wg0", PeerCreate(name="laptop"), SYSTEM)
    csrf = sign_in(app_client, "root")
    page = app_client.post(f"/peers/{peer.id}/share", data={"csrf_token": csrf})
    assert page.status_code == 200
    url = page.text.split('aria-label="Share link"', 1)[0].rsplit('value="', 1)[1].split('"')[0]
    # At the public URL (from the listen address here), not at the Host this browser used.
    assert url.startswith("http://127.0.0.1:8000/s/")
    path = url.removeprefix("http://127.0.0.1:8000")
    stranger = TestClient(app_client.app)
    opened = stranger.post(path, follow_redirects=True)
    assert opened.status_code == 200 and "[Interface]" in opened.text
    assert stranger.post(path).status_code == 404

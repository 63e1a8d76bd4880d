"""2FA enrolment on the dashboard: a wrong code keeps the same secret (the one already in
the user's authenticator app), Cancel drops the enrolment, recovery codes can be copied
and downloaded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.api.test_dashboard_pages import PASSWORD, csrf_of, sign_in
from wirewarden.bootstrap import Container
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import InterfaceCreate
from wirewarden.services.totp import matching_step
from wirewarden.store.tables import User
from wirewarden.web.app import create_app

SECRET = re.compile(r"data-totp-secret>([A-Z2-7]+)<")


def secret_of(html: str) -> str:
    found = SECRET.search(html)
    assert found is not None, html
    return found.group(1)


def wrong_code(secret: str) -> str:
    """A well-formed code that does not match now (nor in the drift window)."""
    return next(c for c in ("000000", "111111", "222222") if matching_step(secret, c, None) is None)


@pytest.fixture
def root(container: Container) -> Iterator[tuple[TestClient, str]]:
    container.users.create(UserCreate(name="root", role="admin", password=PASSWORD), SYSTEM)
    container.interfaces.create(
        InterfaceCreate(name="wg0", address="10.9.0.1/24", endpoint="vpn.example.test"), SYSTEM
    )
    with TestClient(create_app(container, run_loop=False)) as client:
        yield client, sign_in(client, "root")


def test_a_wrong_code_keeps_the_same_secret(root: tuple[TestClient, str]) -> None:
    client, csrf = root
    first = secret_of(client.post("/account/2fa/enrol", data={"csrf_token": csrf}).text)
    again = client.post(
        "/account/2fa/confirm", data={"code": wrong_code(first), "csrf_token": csrf}
    )
    assert again.status_code == 422 and 'id="e-code"' in again.text
    assert secret_of(again.text) == first  # the key the user already scanned still counts
    done = client.post(
        "/account/2fa/confirm", data={"code": pyotp.TOTP(first).now(), "csrf_token": csrf}
    )
    assert done.status_code == 200 and "Recovery codes" in done.text


def test_cancel_drops_the_enrolment(root: tuple[TestClient, str], container: Container) -> None:
    client, csrf = root
    page = client.post("/account/2fa/enrol", data={"csrf_token": csrf}).text
    assert 'action="/account/2fa/cancel"' in page and ">Cancel<" in page
    back = client.post("/account/2fa/cancel", data={"csrf_token": csrf})
    assert back.status_code == 200 and str(back.url).endswith("/account")
    assert "Set up two-factor sign-in" in back.text
    with container.deps.sessions() as db:
        row = db.execute(select(User.totp_enabled, User.totp_secret_enc).where(User.name == "root"))
        assert tuple(row.one()) == (False, None)


def test_required_enrolment_offers_cancel_and_sign_out(container: Container) -> None:
    container.users.create(
        UserCreate(name="ann", role="member", password=PASSWORD, totp_required=True), SYSTEM
    )
    with TestClient(create_app(container, run_loop=False)) as client:
        form = client.get("/login").text
        step = client.post(
            "/login",
            data={"name": "ann", "password": PASSWORD, "next": "/", "csrf_token": csrf_of(form)},
        )
        assert "/login/enrol" in str(step.url)
        first = secret_of(step.text)
        again = client.post(
            "/login/enrol",
            data={"code": wrong_code(first), "next": "/", "csrf_token": csrf_of(step.text)},
        )
        assert secret_of(again.text) == first
        assert 'action="/logout"' in again.text and "Cancel and sign out" in again.text


def test_recovery_codes_copy_and_download(root: tuple[TestClient, str]) -> None:
    client, csrf = root
    secret = secret_of(client.post("/account/2fa/enrol", data={"csrf_token": csrf}).text)
    page = client.post(
        "/account/2fa/confirm", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf}
    ).text
    codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", page)
    assert len(codes) == 10
    link = re.search(r'href="(data:text/plain[^"]+)" download="([^"]+)"', page)
    assert link is not None and link.group(2) == "wirewarden-recovery-codes.txt"
    text = unquote(link.group(1).split(",", 1)[1])
    assert all(code in text for code in codes)
    copy = re.search(r'data-copy="([^"]+)"', page)
    assert copy is not None and all(code in copy.group(1) for code in codes)

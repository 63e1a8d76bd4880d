"""The first-run setup: an admin signing in to a server with no interface lands on a short
form (public host, UDP port, DNS) that makes the first interface and opens its page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.test_dashboard_pages import PASSWORD, csrf_of
from wirewarden.bootstrap import Container
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import InterfaceCreate, PeerCreate
from wirewarden.web.app import create_app


def signed_in(client: TestClient, name: str) -> str:
    """Sign in through the form; the page the sign-in landed on."""
    form = client.get("/login").text
    landed = client.post(
        "/login",
        data={"name": name, "password": PASSWORD, "next": "/", "csrf_token": csrf_of(form)},
    )
    return str(landed.url)


@pytest.fixture
def admin(container: Container) -> Iterator[TestClient]:
    container.users.create(UserCreate(name="root", role="admin", password=PASSWORD), SYSTEM)
    # Reached by a name, as a browser on another machine would.
    with TestClient(
        create_app(container, run_loop=False), base_url="http://vpn.example.org:8000"
    ) as c:
        yield c


def test_first_sign_in_lands_on_setup_prefilled(admin: TestClient) -> None:
    assert signed_in(admin, "root").endswith("/setup")
    setup = admin.get("/setup").text
    assert "Set up your VPN" in setup
    # The public host from the Host the admin used; the first free port and subnet; the
    # gateway's own resolver offered for DNS.
    assert 'name="endpoint" type="text" value="vpn.example.org"' in setup
    assert 'name="listen_port" type="number" value="51820"' in setup
    assert "filtering resolver (10.8.0.1)" in setup and "10.8.0.1/24" in setup
    assert admin.get("/").status_code == 200  # "Skip for now" still opens the overview


def test_sign_in_redirects_there_only_while_no_interface_exists(
    container: Container,
) -> None:
    container.users.create(UserCreate(name="root", role="admin", password=PASSWORD), SYSTEM)
    container.users.create(UserCreate(name="mia", role="member", password=PASSWORD), SYSTEM)
    app = create_app(container, run_loop=False)
    with TestClient(app) as c:
        form = c.get("/login").text
        answer = c.post(
            "/login",
            data={"name": "root", "password": PASSWORD, "next": "/", "csrf_token": csrf_of(form)},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/setup"
    with TestClient(app) as member:
        form = member.get("/login").text
        answer = member.post(
            "/login",
            data={"name": "mia", "password": PASSWORD, "next": "/", "csrf_token": csrf_of(form)},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/"  # members have nothing to set up
    container.interfaces.create(InterfaceCreate(name="wg9", address="10.9.0.1/24"), SYSTEM)
    with TestClient(app) as later:
        form = later.get("/login").text
        answer = later.post(
            "/login",
            data={"name": "root", "password": PASSWORD, "next": "/", "csrf_token": csrf_of(form)},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/"


def test_submitting_creates_the_interface_and_opens_its_page(
    admin: TestClient, container: Container
) -> None:
    signed_in(admin, "root")
    csrf = csrf_of(admin.get("/setup").text)
    done = admin.post(
        "/setup",
        data={
            "name": "wg0",
            "endpoint": "vpn.example.org",
            "listen_port": "51820",
            "dns_choice": "gateway",
            "csrf_token": csrf,
        },
    )
    assert done.status_code == 200 and str(done.url).endswith("/interfaces/wg0")
    iface = container.interfaces.get("wg0")
    assert (iface.endpoint, iface.listen_port, iface.dns, iface.address) == (
        "vpn.example.org",
        51820,
        "10.8.0.1",
        "10.8.0.1/24",
    )
    # A peer's config is now complete: endpoint and the gateway's resolver.
    peer = container.peers.create("wg0", PeerCreate(name="laptop"), SYSTEM)
    config = admin.get(f"/peers/{peer.id}/config").text
    assert "Endpoint = vpn.example.org:51820" in config and "DNS = 10.8.0.1" in config


def test_setup_names_bad_fields(admin: TestClient, container: Container) -> None:
    signed_in(admin, "root")
    csrf = csrf_of(admin.get("/setup").text)
    bad = admin.post(
        "/setup",
        data={
            "name": "wg0",
            "endpoint": "vpn.example.org",
            "listen_port": "99999",
            "dns_choice": "custom",
            "dns_custom": "not-an-ip",
            "csrf_token": csrf,
        },
    )
    assert bad.status_code == 422
    assert 'id="e-listen_port"' in bad.text and 'id="e-dns_custom"' in bad.text
    assert container.interfaces.none_yet()

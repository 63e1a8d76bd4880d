"""An interface's settings page (endpoint, DNS, port, MTU; disable/enable; delete with a
confirmation), the "up" state word, the overview's no-endpoint warning, and the config's
file name that wg-quick accepts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.test_dashboard_pages import PASSWORD, sign_in
from wirewarden.bootstrap import Container, build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.names import config_file_name
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import InterfaceCreate, PeerCreate
from wirewarden.web.app import create_app

WG_QUICK_NAME = re.compile(r"^[a-zA-Z0-9_=+.-]{1,15}$")


@pytest.fixture
def ui(container: Container) -> Iterator[TestClient]:
    container.users.create(UserCreate(name="alice", role="admin", password=PASSWORD), SYSTEM)
    container.interfaces.create(
        InterfaceCreate(name="ux1", address="10.9.0.1/24", endpoint="vpn.example.test"), SYSTEM
    )
    with TestClient(create_app(container, run_loop=False)) as client:
        client.headers["x-test-csrf"] = sign_in(client, "alice")
        yield client


def _post(ui: TestClient, path: str, **data: str) -> object:
    return ui.post(path, data={**data, "csrf_token": ui.headers["x-test-csrf"]})


def test_settings_page_edits_endpoint_dns_port_mtu(ui: TestClient, container: Container) -> None:
    page = ui.get("/interfaces/ux1/settings").text
    assert 'value="vpn.example.test"' in page and 'name="mtu"' in page
    fields = {"endpoint": "203.0.113.9:51999", "dns": "10.9.0.1", "listen_port": "51900"}
    saved = ui.post(
        "/interfaces/ux1/settings",
        data={**fields, "mtu": "1380", "csrf_token": ui.headers["x-test-csrf"]},
    )
    assert saved.status_code == 200 and "Settings saved." in saved.text
    iface = container.interfaces.get("ux1")
    assert (iface.endpoint, iface.dns, iface.listen_port, iface.mtu) == (
        "203.0.113.9:51999",
        "10.9.0.1",
        51900,
        1380,
    )
    # The interface page shows what was saved.
    shown = ui.get("/interfaces/ux1").text
    assert "203.0.113.9:51999" in shown and "10.9.0.1" in shown


def test_settings_page_names_bad_fields(ui: TestClient, container: Container) -> None:
    bad = ui.post(
        "/interfaces/ux1/settings",
        data={"dns": "not-an-ip", "mtu": "100", "csrf_token": ui.headers["x-test-csrf"]},
    )
    assert bad.status_code == 422
    assert 'id="e-dns"' in bad.text and 'id="e-mtu"' in bad.text
    assert container.interfaces.get("ux1").mtu == 1420  # nothing changed


def test_disable_enable_and_delete_after_confirming(
    ui: TestClient, container: Container, dataplane: FakeDataplane
) -> None:
    _post(ui, "/interfaces/ux1/disable")
    assert container.interfaces.get("ux1").enabled is False
    assert 'class="badge off">down' in ui.get("/").text
    assert "ux1" not in dataplane.devices
    _post(ui, "/interfaces/ux1/enable")
    assert container.interfaces.get("ux1").enabled is True and "ux1" in dataplane.devices

    confirm = ui.get("/interfaces/ux1/delete").text
    assert "Delete ux1?" in confirm and "cannot be undone" in confirm
    assert container.interfaces.get("ux1")  # the confirmation page changes nothing
    gone = ui.post(
        "/interfaces/ux1/delete",
        data={"csrf_token": ui.headers["x-test-csrf"]},
        follow_redirects=False,
    )
    assert gone.status_code == 303 and gone.headers["location"] == "/"
    assert ui.get("/interfaces/ux1").status_code == 404
    assert dataplane.devices == {}


def test_delete_needs_the_csrf_token(ui: TestClient, container: Container) -> None:
    assert ui.post("/interfaces/ux1/delete", data={}).status_code == 403
    assert container.interfaces.get("ux1").name == "ux1"


def test_members_may_not_open_settings(ui: TestClient, container: Container) -> None:
    container.users.create(UserCreate(name="bob", role="member", password=PASSWORD), SYSTEM)
    with TestClient(ui.app) as bob:
        sign_in(bob, "bob")
        assert bob.get("/interfaces/ux1/settings").status_code == 403
        assert "/interfaces/ux1/settings" not in bob.get("/interfaces/ux1").text


def test_state_reads_up_where_the_api_says_applied(ui: TestClient) -> None:
    assert ui.get("/api/v1/interfaces/ux1").json()["status"] == "applied"
    overview = ui.get("/").text
    assert '<span class="badge on">up</span>' in overview and "applied" not in overview
    page = ui.get("/interfaces/ux1").text
    assert '<span class="badge on">up</span>' in page and "applied" not in page


def test_config_file_name_is_a_wg_quick_interface_name(
    ui: TestClient, container: Container
) -> None:
    peer = container.peers.create("ux1", PeerCreate(name="grandma-laptop"), SYSTEM)
    download = ui.get(f"/peers/{peer.id}/config")
    found = re.search(r'filename="([^"]+)\.conf"', download.headers["content-disposition"])
    assert found is not None
    assert WG_QUICK_NAME.fullmatch(found.group(1)), found.group(1)
    assert found.group(1).startswith("ux1-grandm")
    short = container.peers.create("ux1", PeerCreate(name="phone"), SYSTEM)
    assert (
        'filename="ux1-phone.conf"'
        in ui.get(f"/peers/{short.id}/config").headers["content-disposition"]
    )


def test_long_names_stay_distinct() -> None:
    names = {config_file_name("wg-office", f"laptop-{n}") for n in range(50)}
    assert len(names) == 50
    assert all(WG_QUICK_NAME.fullmatch(n.removesuffix(".conf")) for n in names)


@pytest.fixture
def bare(tmp_path: Path, dataplane: FakeDataplane) -> Iterator[Container]:
    """A server without WIREWARDEN_PUBLIC_HOST."""
    built = build(Settings(data_dir=tmp_path / "bare"), dataplane=dataplane, stats_max_age=0)
    yield built
    built.engine.dispose()


def test_overview_warns_of_an_interface_without_endpoint(bare: Container) -> None:
    bare.users.create(UserCreate(name="alice", role="admin", password=PASSWORD), SYSTEM)
    bare.interfaces.create(InterfaceCreate(name="wg0", address="10.9.0.1/24"), SYSTEM)
    bare.interfaces.create(
        InterfaceCreate(name="wg1", address="10.10.0.1/24", endpoint="vpn.example.test"), SYSTEM
    )
    with TestClient(create_app(bare, run_loop=False)) as client:
        sign_in(client, "alice")
        overview = client.get("/").text
        assert 'data-no-endpoint="wg0"' in overview and "has no public endpoint" in overview
        assert 'data-no-endpoint="wg1"' not in overview
        assert 'href="/interfaces/wg0/settings"' in overview


def test_no_warning_when_the_server_has_a_public_host(ui: TestClient, container: Container) -> None:
    container.interfaces.create(InterfaceCreate(name="wg2", address="10.11.0.1/24"), SYSTEM)
    assert "has no public endpoint" not in ui.get("/").text

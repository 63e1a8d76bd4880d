"""The dashboard's Nodes page: status, place, load, drain, and a new node's join token
shown once; admins only."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.test_dashboard_pages import PASSWORD, sign_in
from wirewarden.bootstrap import Container
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.services.node_schemas import NodeUpdate
from wirewarden.services.tenant_schemas import TenantCreate
from wirewarden.web.app import create_app


@pytest.fixture
def ui(container: Container) -> Iterator[TestClient]:
    container.users.create(UserCreate(name="alice", role="admin", password=PASSWORD), SYSTEM)
    with TestClient(create_app(container, run_loop=False)) as client:
        client.headers["x-test-csrf"] = sign_in(client, "alice")
        yield client


def _post(ui: TestClient, url: str, **data: str) -> object:
    return ui.post(url, data={"csrf_token": ui.headers["x-test-csrf"], **data})


def test_nodes_page_adds_a_node_and_shows_its_token_once(
    ui: TestClient, container: Container, database_url: str | None
) -> None:
    page = ui.get("/nodes")
    assert page.status_code == 200
    assert 'data-node="local"' in page.text and "this server" in page.text
    place = {"region": "eu", "capacity": "50", "country": "de", "public_host": "fra1.example.net"}
    added = _post(ui, "/nodes/new", name="fra1", **place)
    if database_url is None:
        assert added.status_code == 409  # type: ignore[attr-defined]
        assert "wirewarden db copy" in added.text  # type: ignore[attr-defined]
        return
    assert added.status_code == 200, added.text  # type: ignore[attr-defined]
    token = added.text.split("data-join-token>")[1].split("<")[0]  # type: ignore[attr-defined]
    assert token.startswith("wwj_")
    again = ui.get("/nodes").text
    assert 'data-node="fra1"' in again and "Region eu" in again and token not in again
    assert "pending" in again and "0 / 50" in again
    assert container.nodes.get("fra1", SYSTEM).public_host == "fra1.example.net"
    # The list refreshes itself in place (status, load, last seen), the token never with it.
    region = again.split('<div id="node-list"')[1].split("<h2>Add a node</h2>")[0]
    assert 'hx-trigger="every 10s"' in region and 'data-node="fra1"' in region
    assert "fra1.example.net" in region.split('data-node="fra1"')[1].split("</tr>")[0]


def test_drain_switch(ui: TestClient, container: Container) -> None:
    answer = _post(ui, "/nodes/local/drain", drain="on")
    assert answer.status_code in (200, 303)  # type: ignore[attr-defined]
    assert container.nodes.get("local", SYSTEM).drain is True
    _post(ui, "/nodes/local/drain", drain="off")
    assert container.nodes.get("local", SYSTEM).drain is False


def test_bad_input_names_the_field(ui: TestClient) -> None:
    answer = _post(ui, "/nodes/new", name="n1", country="Germany")
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert 'id="e-country"' in answer.text  # type: ignore[attr-defined]
    aimed = _post(ui, "/nodes/new", name="n1", public_host="n1.example.net:80")
    assert aimed.status_code == 422  # type: ignore[attr-defined]
    assert 'id="e-public_host"' in aimed.text  # type: ignore[attr-defined]


def test_tenant_admins_get_no_nodes_page(container: Container) -> None:
    container.tenants.create(TenantCreate(name="acme"), SYSTEM)
    user = UserCreate(name="bob", role="tenant-admin", tenant="acme", password=PASSWORD)
    container.users.create(user, SYSTEM)
    with TestClient(create_app(container, run_loop=False)) as client:
        client.headers["x-test-csrf"] = sign_in(client, "bob")
        assert client.get("/nodes").status_code == 403
        assert _post(client, "/nodes/local/drain", drain="on").status_code == 403  # type: ignore[attr-defined]
    assert container.nodes.get("local", SYSTEM).drain is False


def test_a_hostile_place_name_stays_data_in_the_maps_markers(
    ui: TestClient, container: Container
) -> None:
    # A city name that would close the attribute the markers ride in and open an element.
    city = 'x\' data-x="1"><img src=x onerror=alert(1)>'
    container.nodes.update("local", NodeUpdate(city=city, lat=50.11, lon=8.68), SYSTEM)
    page = ui.get("/nodes").text
    assert "<img src=x" not in page
    attribute = page.split("data-markers='")[1].split("'")[0]
    assert json.loads(html.unescape(attribute)) == [
        {
            "name": "local",
            "coords": [50.11, 8.68],
            "status": "pending",
            "place": city,
            "load": 0.0,
            "peers": 0,
        }
    ]

"""The dashboard's pages over the ASGI app: what a signed-in user sees and can do."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from wirewarden.bootstrap import Container
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.state import DeviceDump, PeerStats
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import InterfaceCreate, PeerCreate, PeerUpdate
from wirewarden.web.app import create_app

PASSWORD = "correct-horse-battery-staple"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the dashboard's form; the session's CSRF token."""
    form = client.get("/login").text
    answer = client.post(
        "/login",
        data={"name": name, "password": password, "next": "/", "csrf_token": csrf_of(form)},
    )
    assert answer.status_code == 200, answer.text
    return csrf_of(answer.text)


def csrf_of(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found is not None, html
    return found.group(1)


@pytest.fixture
def ui(container: Container) -> Iterator[TestClient]:
    container.users.create(UserCreate(name="alice", role="admin", password=PASSWORD), SYSTEM)
    with TestClient(create_app(container, run_loop=False)) as client:
        client.headers["x-test-csrf"] = sign_in(client, "alice")
        yield client


@pytest.fixture
def csrf(ui: TestClient) -> str:
    return ui.headers["x-test-csrf"]


@pytest.fixture
def wg0(container: Container) -> str:
    container.interfaces.create(
        InterfaceCreate(name="wg0", address="10.9.0.1/24", endpoint="vpn.example.test"), SYSTEM
    )
    return "wg0"


def peer_names(html: str) -> list[str]:
    return re.findall(r'<a href="/peers/\d+">([^<]+)</a>', html)


def test_signed_out_pages_send_to_sign_in(container: Container) -> None:
    with TestClient(create_app(container, run_loop=False)) as client:
        answer = client.get("/interfaces/wg0?page=2", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/interfaces/wg0%3Fpage%3D2"


def test_pages_show_the_favicon(container: Container) -> None:
    with TestClient(create_app(container, run_loop=False)) as client:
        page = client.get("/login").text
        icon = re.search(r'<link rel="icon" href="([^"]+)"', page)
        assert icon is not None
        served = client.get(icon.group(1))
        fallback = client.get("/favicon.ico")
    assert served.status_code == 200 and served.headers["content-type"].startswith("image/svg")
    assert "<svg" in served.text
    assert fallback.status_code == 200 and fallback.content == served.content


def test_overview_lists_interfaces_and_totals(
    ui: TestClient, container: Container, wg0: str
) -> None:
    container.peers.create(wg0, PeerCreate(name="laptop"), SYSTEM)
    page = ui.get("/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert '<a href="/interfaces/wg0">wg0</a>' in page.text
    assert 'data-total="peers">1<' in page.text


def test_peer_table_searches_sorts_and_pages_on_the_server(
    ui: TestClient, container: Container, wg0: str
) -> None:
    for name in ("delta", "alpha", "charlie", "bravo", "echo"):
        container.peers.create(wg0, PeerCreate(name=name), SYSTEM)
    assert peer_names(ui.get("/interfaces/wg0").text) == [
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
    ]
    by_address = ui.get("/interfaces/wg0?sort=address&dir=desc").text
    assert peer_names(by_address) == ["echo", "bravo", "charlie", "alpha", "delta"]
    assert peer_names(ui.get("/interfaces/wg0?q=ha").text) == ["alpha", "charlie"]
    assert peer_names(ui.get("/interfaces/wg0?q=10.9.0.3").text) == ["alpha"]
    second = ui.get("/interfaces/wg0?size=25&page=1&q=").text
    assert "1\u20135 of 5" in second
    # htmx asks for the table alone
    partial = ui.get("/interfaces/wg0?q=echo", headers={"HX-Request": "true"}).text
    assert partial.lstrip().startswith('<div id="peer-table"')
    assert peer_names(partial) == ["echo"]


def test_next_page_link_follows_the_cursor_past_a_new_peer(
    ui: TestClient, container: Container, wg0: str
) -> None:
    names = [f"p{i:02d}" for i in range(30)]
    for name in names:
        container.peers.create(wg0, PeerCreate(name=name), SYSTEM)
    first = ui.get("/interfaces/wg0?size=25").text
    assert peer_names(first) == names[:25]
    found = re.search(r'<a href="([^"]+)"\s+hx-get="[^"]+"[^>]*rel="next"', first)
    assert found is not None and "after=" in found.group(1)
    # A peer that sorts before the page being read must not push a row back onto it.
    container.peers.create(wg0, PeerCreate(name="a-new"), SYSTEM)
    second = ui.get(found.group(1).replace("&amp;", "&")).text
    assert peer_names(second) == names[25:]
    assert "27\u201331 of 31" in second and "Page 2 of 2" in second
    # A cursor the server never gave out is the first page, not an error.
    forged = ui.get("/interfaces/wg0?size=25&page=2&after=%%%")
    assert forged.status_code == 200 and peer_names(forged.text)[0] == "a-new"


def test_peer_table_sorts_by_live_transfer(
    ui: TestClient, container: Container, dataplane: FakeDataplane, wg0: str
) -> None:
    keys = {}
    for name in ("small", "big", "none"):
        keys[name] = container.peers.create(wg0, PeerCreate(name=name), SYSTEM).public_key
    moved = {keys["small"]: 10, keys["big"]: 5000}
    real = dataplane.dump_all

    def dump() -> dict[str, DeviceDump]:
        out = real()
        dev = out["wg0"]
        stats = {k: PeerStats(None, 0, moved.get(k, 0), 0) for k in dev.peers}
        return {"wg0": DeviceDump(dev.private_key, dev.listen_port, dev.peers, stats)}

    container.deps.stats = dump
    page = ui.get("/interfaces/wg0?sort=transfer&dir=desc").text
    assert peer_names(page) == ["big", "small", "none"]
    assert "5.0 kB" in page


def test_create_peer_shows_field_errors_then_creates(
    ui: TestClient, csrf: str, container: Container, wg0: str
) -> None:
    bad = ui.post(
        "/interfaces/wg0/peers/new",
        data={
            "name": "Not OK",
            "allowed_ips": "10.0.0.0/33",
            "persistent_keepalive": "often",
            "csrf_token": csrf,
        },
    )
    assert bad.status_code == 422
    assert 'id="e-name"' in bad.text and 'id="e-allowed_ips"' in bad.text
    # Plain words next to the field, not pydantic's or the ipaddress module's.
    assert 'id="e-persistent_keepalive">Enter a whole number, like 25.</p>' in bad.text
    assert "Input should" not in bad.text and "does not appear to be" not in bad.text
    made = ui.post(
        "/interfaces/wg0/peers/new",
        data={"name": "phone", "allowed_ips": "0.0.0.0/0", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert made.status_code == 303
    peer = container.peers.find_by_name("wg0", "phone")
    assert made.headers["location"] == f"/peers/{peer.id}"
    taken = ui.post(
        "/interfaces/wg0/peers/new",
        data={"name": "phone", "allowed_ips": "0.0.0.0/0", "csrf_token": csrf},
    )
    assert taken.status_code == 409
    assert "already exists" in taken.text


def test_forms_without_the_csrf_token_are_refused(
    ui: TestClient, csrf: str, container: Container, wg0: str
) -> None:
    form = {"name": "phone", "allowed_ips": "0.0.0.0/0"}
    answer = ui.post("/interfaces/wg0/peers/new", data=form, follow_redirects=False)
    assert answer.status_code == 403
    # Refused, not made and answered 403 after: the same form with the token makes the peer.
    assert container.peers.list(wg0).total == 0
    made = ui.post(
        "/interfaces/wg0/peers/new", data={**form, "csrf_token": csrf}, follow_redirects=False
    )
    assert made.status_code == 303
    assert [p.name for p in container.peers.list(wg0).items] == ["phone"]


def test_peer_page_config_qr_disable_edit_delete(
    ui: TestClient, csrf: str, container: Container, wg0: str
) -> None:
    peer = container.peers.create(wg0, PeerCreate(name="laptop"), SYSTEM)
    page = ui.get(f"/peers/{peer.id}").text
    assert f'src="/peers/{peer.id}/qr.svg"' in page and peer.public_key in page
    config = ui.get(f"/peers/{peer.id}/config")
    assert config.headers["content-disposition"] == 'attachment; filename="wg0-laptop.conf"'
    assert "[Interface]" in config.text and "Endpoint = vpn.example.test:" in config.text
    assert ui.get(f"/peers/{peer.id}/qr.svg").text.startswith("<svg")

    ui.post(f"/peers/{peer.id}/disable", data={"csrf_token": csrf})
    assert container.peers.get(peer.id).enabled is False

    edited = ui.post(
        f"/peers/{peer.id}/edit",
        data={
            "name": "work-laptop",
            "allowed_ips": "10.9.0.0/24",
            "persistent_keepalive": "0",
            "routed_ips": "",
            "expires_at": "",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert edited.status_code == 303
    after = container.peers.get(peer.id)
    assert (after.name, after.allowed_ips, after.persistent_keepalive) == (
        "work-laptop",
        "10.9.0.0/24",
        None,
    )
    assert "Delete work-laptop?" in ui.get(f"/peers/{peer.id}/delete").text
    ui.post(f"/peers/{peer.id}/delete", data={"csrf_token": csrf})
    assert ui.get(f"/peers/{peer.id}").status_code == 404


def test_create_interface_form(ui: TestClient, csrf: str, container: Container) -> None:
    bad = ui.post("/interfaces/new", data={"name": "wg0", "address": "nope", "csrf_token": csrf})
    assert bad.status_code == 422 and 'id="e-address"' in bad.text
    ok = ui.post(
        "/interfaces/new",
        data={"name": "wg7", "address": "10.7.0.1/24", "mtu": "1420", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert ok.headers["location"] == "/interfaces/wg7"
    assert container.interfaces.get("wg7").address == "10.7.0.1/24"


def test_front_end_libraries_come_from_our_own_origin(ui: TestClient) -> None:
    page = ui.get("/").text
    assert '<script src="/static/vendor/htmx.min.js"' in page
    assert "<style" not in page and " style=" not in page and "onclick" not in page
    assert ui.get("/static/app.js").status_code == 200
    assert ui.get("/static/vendor/not-listed.js").status_code == 404


def test_live_status_socket_sends_watched_peers(
    ui: TestClient, container: Container, wg0: str
) -> None:
    peer = container.peers.create(wg0, PeerCreate(name="laptop"), SYSTEM)
    with ui.websocket_connect("/ws/status", headers={"origin": "http://testserver"}) as socket:
        socket.send_json({"watch": [peer.id], "overview": True})
        message = socket.receive_json()
    assert message["peers"][str(peer.id)]["online"] is False
    assert message["totals"]["peers"] == 1


def test_live_status_socket_refuses_other_origins(ui: TestClient) -> None:
    with ui.websocket_connect("/ws/status", headers={"origin": "http://evil.test"}) as socket:
        closed = socket.receive()
    assert closed["type"] == "websocket.close" and closed["code"] == 4403


def test_actions_say_what_they_did_once(
    ui: TestClient, csrf: str, container: Container, wg0: str
) -> None:
    made = ui.post(
        "/interfaces/wg0/peers/new",
        data={"name": "tablet", "allowed_ips": "0.0.0.0/0", "csrf_token": csrf},
    )
    notice = '<p class="notice" role="status">'
    assert f"{notice}tablet added: download its config" in made.text
    peer = container.peers.find_by_name("wg0", "tablet")
    # Shown once: a reload of the page does not repeat it.
    assert notice not in ui.get(f"/peers/{peer.id}").text
    off = ui.post(f"/peers/{peer.id}/disable", data={"csrf_token": csrf})
    assert f"{notice}tablet disabled: its traffic is blocked." in off.text
    on = ui.post(f"/peers/{peer.id}/enable", data={"csrf_token": csrf})
    assert f"{notice}tablet enabled: it can connect again." in on.text
    gone = ui.post(f"/peers/{peer.id}/delete", data={"csrf_token": csrf})
    assert f"{notice}tablet deleted." in gone.text and gone.url.path == "/interfaces/wg0"


def test_peers_have_display_names_with_unique_slugs(
    ui: TestClient, csrf: str, container: Container, wg0: str
) -> None:
    def add(display: str) -> str:
        made = ui.post(
            "/interfaces/wg0/peers/new",
            data={"display_name": display, "allowed_ips": "0.0.0.0/0", "csrf_token": csrf},
        )
        assert made.status_code == 200 and made.url.path.startswith("/peers/"), made.text
        assert f"<h1>{escape(display)}</h1>" in made.text
        return str(made.url.path)

    laptop = add("Dad's Laptop")
    add("Dad\u2019s laptop")  # the same slug: made unique
    grandma = add("Grandma Ünal")
    names = {p.name: p.display_name for p in container.peers.list("wg0").items}
    assert names == {
        "dads-laptop": "Dad's Laptop",
        "dads-laptop-2": "Dad\u2019s laptop",
        "grandma-unal": "Grandma Ünal",
    }
    table = ui.get("/interfaces/wg0").text
    assert "Dad&#39;s Laptop</a>" in table and "Grandma Ünal</a>" in table
    found = ui.get("/interfaces/wg0", params={"q": "ÜNAL"}).text  # the name people know
    assert "Grandma Ünal</a>" in found and "Laptop</a>" not in found
    # The slug is shown as the short name, and the download's file name is a valid
    # wg-quick interface name.
    page = ui.get(laptop).text
    assert '<dd class="mono">dads-laptop</dd>' in page
    assert "Download wg0-dads-laptop.conf" in page  # 15 characters: wg-quick takes it
    longer = ui.get(grandma).text  # wg0-grandma-unal is 16: shortened with a hash
    assert re.search(r"Download wg0-grandm-[0-9a-f]{4}\.conf", longer)
    empty = ui.post(
        "/interfaces/wg0/peers/new",
        data={"display_name": "", "allowed_ips": "0.0.0.0/0", "csrf_token": csrf},
    )
    assert empty.status_code == 422 and "Enter a name, like Dad&#39;s Laptop." in empty.text


def test_interface_page_draws_its_mesh_online_peers_lit(
    ui: TestClient, container: Container, dataplane: FakeDataplane, wg0: str
) -> None:
    made = {
        name: container.peers.create(wg0, PeerCreate(name=name), SYSTEM)
        for name in ("alpha", "beta", "gamma")
    }
    for name in ("alpha", "beta"):
        container.peers.update(made[name].id, PeerUpdate(mesh=True), SYSTEM)
    real = dataplane.dump_all

    def dump() -> dict[str, DeviceDump]:
        out = real()
        dev = out["wg0"]
        now = int(time.time())
        online = {made["alpha"].public_key}
        stats = {k: PeerStats(None, now if k in online else 0, 0, 0) for k in dev.peers}
        return {"wg0": DeviceDump(dev.private_key, dev.listen_port, dev.peers, stats)}

    container.deps.stats = dump
    page = ui.get("/interfaces/wg0").text
    svg = page[page.index("<svg") : page.index("</svg>")]
    states = {
        name: state
        for state, name in re.findall(r'data-mesh-dot class="(on|idle)"[^>]*><title>(\w+)', svg)
    }
    assert states == {"alpha": "on", "beta": "idle", "gamma": "idle"}
    # One link: the two peers that both have mesh on (the firewall's rule).
    ids = sorted((made["alpha"].id, made["beta"].id))
    links = re.findall(r'data-link="(\d+)-(\d+)"', svg)
    assert [tuple(sorted(map(int, link))) for link in links] == [tuple(ids)]
    # Each dot is a live element of the status socket (it lights up without a reload).
    assert all(f'<g data-peer-id="{p.id}"' in svg for p in made.values())

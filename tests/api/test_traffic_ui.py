"""Traffic on the dashboard: chart data behind the session, the charts on the peer and
interface pages, live rates and top talkers on the overview."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_dashboard_pages import PASSWORD, sign_in
from wirewarden.bootstrap import Container
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.state import PeerStats
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import InterfaceCreate, PeerCreate, PeerOut
from wirewarden.web.app import create_app
from wirewarden.web.ui.live import StatusHub


def signed_in(container: Container, role: str) -> Iterator[TestClient]:
    """A browser-like client signed in through the dashboard as a new user of `role`."""
    name = f"alice-{role}"
    container.users.create(UserCreate(name=name, role=role, password=PASSWORD), SYSTEM)  # type: ignore[arg-type]
    with TestClient(create_app(container, run_loop=False)) as client:
        sign_in(client, name)
        yield client


@pytest.fixture
def admin(container: Container) -> Iterator[TestClient]:
    yield from signed_in(container, "admin")


@pytest.fixture
def member(container: Container) -> Iterator[TestClient]:
    yield from signed_in(container, "member")


@pytest.fixture
def peers(container: Container, dataplane: FakeDataplane) -> dict[str, PeerOut]:
    container.interfaces.create(InterfaceCreate(name="wg0", address="10.9.0.1/24"), SYSTEM)
    made = {n: container.peers.create("wg0", PeerCreate(name=n), SYSTEM) for n in ("ann", "bo")}
    for rx, tx in ((0, 0), (1_000, 3_000_000)):
        dataplane.counters[("wg0", made["ann"].public_key)] = PeerStats(
            "198.51.100.4:5000", int(time.time()), rx, tx
        )
        time.sleep(0.01)
        container.collector.collect()
    return made


def test_peer_chart_data_is_bytes_per_bucket(admin: TestClient, peers: dict[str, PeerOut]) -> None:
    answer = admin.get(f"/ui/traffic/peers/{peers['ann'].id}.json", params={"range": "1h"})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body: dict[str, Any] = answer.json()
    assert body["step"] == 60
    assert len(body["t"]) == len(body["rx"]) == len(body["tx"]) in (60, 61)
    assert sum(body["tx"]) == body["tx_bytes"] == 3_000_000
    assert body["t"] == sorted(body["t"]) and body["t"][1] - body["t"][0] == 60
    for span, step in (("24h", 300), ("7d", 900), ("30d", 3600), ("1y", 86400)):
        got = admin.get(f"/ui/traffic/peers/{peers['ann'].id}.json", params={"range": span})
        assert got.json()["step"] == step, span
    iface = admin.get("/ui/traffic/interfaces/wg0.json").json()
    assert iface["tx_bytes"] == 3_000_000


def test_chart_data_checks_the_range(admin: TestClient, peers: dict[str, PeerOut]) -> None:
    url = f"/ui/traffic/peers/{peers['ann'].id}.json"
    assert admin.get(url, params={"range": "2w"}).status_code == 422
    assert admin.get("/ui/traffic/peers/999.json").status_code == 404


def test_a_member_sees_only_own_peers_and_no_interface_chart(
    member: TestClient, peers: dict[str, PeerOut]
) -> None:
    # Not theirs: 404, exactly like a missing peer (services/access.py).
    assert member.get(f"/ui/traffic/peers/{peers['ann'].id}.json").status_code == 404
    assert member.get("/ui/traffic/interfaces/wg0.json").status_code == 403


def test_signed_out_chart_data_asks_to_sign_in(
    container: Container, peers: dict[str, PeerOut]
) -> None:
    with TestClient(create_app(container, run_loop=False)) as anon:
        answer = anon.get(f"/ui/traffic/peers/{peers['ann'].id}.json", follow_redirects=False)
    assert answer.status_code == 303


def test_pages_carry_their_charts(admin: TestClient, peers: dict[str, PeerOut]) -> None:
    page = admin.get(f"/peers/{peers['ann'].id}").text
    assert f'data-src="/ui/traffic/peers/{peers["ann"].id}.json"' in page
    assert "/static/vendor/uPlot.iife.min.js" in page and "/static/charts.js" in page
    for span in ("1h", "24h", "7d", "30d", "1y"):
        assert f'data-range="{span}"' in page
    assert 'data-src="/ui/traffic/interfaces/wg0.json"' in admin.get("/interfaces/wg0").text
    assert admin.get("/static/charts.js").status_code == 200


def test_overview_has_live_rates_and_top_talkers(
    admin: TestClient, peers: dict[str, PeerOut]
) -> None:
    page = admin.get("/").text
    assert "data-live-rates" in page and 'data-rate="tx"' in page
    assert "Top talkers" in page and 'hx-get="/ui/traffic/top?range=24h"' in page
    assert f'<a href="/peers/{peers["ann"].id}">ann</a>' in admin.get("/ui/traffic/top").text
    fragment = admin.get("/ui/traffic/top", params={"range": "7d"})
    assert fragment.status_code == 200
    assert 'hx-get="/ui/traffic/top?range=7d"' in fragment.text
    assert ">ann<" in fragment.text and ">bo<" not in fragment.text  # bo moved nothing


def test_live_totals_carry_the_collectors_rates(
    container: Container, peers: dict[str, PeerOut]
) -> None:
    hub = StatusHub(container)
    totals = hub.snapshot().totals(None)
    rates = totals["rates"]
    assert rates["tx"] > 0 and rates["interfaces"]["wg0"]["tx"] == rates["tx"]
    # a viewer limited to other peers sees none of it
    assert hub.snapshot().totals({peers["bo"].id})["rates"]["tx"] == 0


def test_a_member_gets_no_form_or_chart_it_may_not_use(
    member: TestClient, container: Container, peers: dict[str, PeerOut]
) -> None:
    """Every chart and fragment a member's pages load answers 200 (no 403 chart), and the
    interface page has no bulk policy form or selection column."""
    mine = container.peers.create("wg0", PeerCreate(name="mine", owner="alice-member"), SYSTEM)
    pages = {path: member.get(path) for path in ("/", "/interfaces/wg0", f"/peers/{mine.id}")}
    for path, answer in pages.items():
        assert answer.status_code == 200, path
        for url in re.findall(r'(?:data-src|hx-get)="([^"]+)"', answer.text):
            assert member.get(url.replace("&amp;", "&")).status_code == 200, (path, url)
    table = pages["/interfaces/wg0"].text
    assert "bulk-policy" not in table and "/ui/traffic/interfaces/" not in table
    assert "/policy" not in table and ">mine</a>" in table

"""The dashboard's DNS page: policies edited through the form, stats and the query log."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.test_dashboard_pages import PASSWORD, sign_in
from wirewarden.bootstrap import Container
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.store.dns import DnsStore
from wirewarden.web.app import create_app
from wirewarden.web.ui import blocklists


@pytest.fixture
def ui(container: Container) -> Iterator[TestClient]:
    container.users.create(UserCreate(name="alice", role="admin", password=PASSWORD), SYSTEM)
    with TestClient(create_app(container, run_loop=False)) as client:
        client.headers["x-test-csrf"] = sign_in(client, "alice")
        yield client


def test_dns_page_shows_policies_stats_and_log(ui: TestClient, container: Container) -> None:
    now = time.time()
    DnsStore(container.deps.sessions, "local").write_log(
        [
            (
                now,
                3,
                "laptop",
                "10.8.0.2",
                "default",
                b"\x03ads\x07example\x00",
                1,
                "blocked",
                "deny",
                3,
                None,
                None,
                1,
            )
        ]
    )
    page = ui.get("/dns")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "<strong>default</strong>" in page.text
    assert 'data-total="blocked">1<' in page.text
    assert '<td class="mono">ads.example</td>' in page.text
    assert ui.get("/dns?status=resolved").text.count('<td class="mono">') == 0


def test_servfail_is_shown_as_failed_not_allowed(ui: TestClient, container: Container) -> None:
    now = time.time()
    name = b"\x04down\x07example\x00"
    # (at, peer id, peer, client, policy, name, qtype, status, reason, rcode, upstream, ms, n)
    DnsStore(container.deps.sessions, "local").write_log(
        [
            (
                now,
                3,
                "laptop",
                "10.8.0.2",
                "default",
                name,
                1,
                "servfail",
                "no upstream answered",
                2,
                None,
                None,
                2,
            )
        ]
    )
    page = ui.get("/dns").text
    top = page[page.index("<caption>Top blocked") : page.index("</table>")]
    header = re.findall(r'<th scope="col">([^<]*)</th>', top)
    cells = re.findall(r"<td>([^<]*)</td>", top)
    assert header == ["Blocked", "Count", "Allowed", "Count", "Failed", "Count"]
    assert cells == ["", "", "", "", "down.example", "2"]


def test_policy_form_saves_and_names_bad_fields(ui: TestClient, container: Container) -> None:
    form = {
        "csrf_token": ui.headers["x-test-csrf"],
        "name": "kids",
        "deny": "games.example\n*.tiktok.com",
        "allow": "",
        "blocklists": "",
        "block_answer": "null-ip",
        "anti_bypass": "on",
    }
    saved = ui.post("/dns/policies", data=form, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/dns"
    policy = container.dns.get_policy("kids")
    assert policy.deny == ["games.example", "*.tiktok.com"] and policy.block_answer == "null-ip"
    bad = ui.post("/dns/policies", data={**form, "deny": "not a name"})
    assert bad.status_code == 422 and "is not a domain name" in bad.text
    assert ui.post("/dns/policies", data={**form, "csrf_token": "x"}).status_code == 403


def test_well_known_blocklists_are_picked_not_typed(
    ui: TestClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalogue is offered as checkboxes; a ticked one goes into the policy's lists
    next to the typed ones. (The catalogue's real URLs are never fetched here: a local
    list stands in for one of them.)"""
    page = ui.get("/dns").text
    for known in blocklists.KNOWN_LISTS:
        assert f'name="known" value="{known.url}"' in page and known.name in page
    lists = container.settings.data_dir / "dns" / "local-lists"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "family.txt").write_text("||adult.example^\n")
    (lists / "mine.txt").write_text("games.example\n")
    local, other = "family.txt", "mine.txt"
    stand_in = (blocklists.KnownList("Family list", "test", local),)
    monkeypatch.setattr(blocklists, "KNOWN_LISTS", stand_in)
    monkeypatch.setattr(blocklists, "KNOWN_URLS", frozenset({local}))
    form = {
        "csrf_token": ui.headers["x-test-csrf"],
        "name": "kids",
        "known": local,
        "blocklists": other,
        "block_answer": "nxdomain",
    }
    saved = ui.post("/dns/policies", data=form, follow_redirects=False)
    assert saved.status_code == 303
    assert container.dns.get_policy("kids").blocklists == [local, other]
    again = ui.get("/dns").text
    assert f'name="known" value="{local}" checked' in again
    # The picked list is ticked, not repeated in the free-text box.
    box = again[again.index('id="bl-kids"') :]
    assert box[: box.index("</textarea>")].endswith(other)

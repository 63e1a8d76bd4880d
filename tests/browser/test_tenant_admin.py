"""A tenant admin in Chromium (issue 16): signed in, every page the dashboard's menu and
links lead to shows its own tenant's interface, peers, users and events, and never a name
of the other tenant; the other tenant's pages, typed in, are not found. On a phone too,
without sideways overflow."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import Live, sign_in
from tests.browser.test_phone import OVERFLOW
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import PeerCreate
from wirewarden.services.tenant_schemas import TenantCreate

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# Names that belong to beta alone: none may show on a page of acme's admin.
BETA = ("beta", "t-beta", "bob-laptop", "bob-phone", "bea")


def world(live: Live) -> dict[str, Any]:
    c = live.container
    made = {}
    for tenant, peers in (("acme", ("alice-laptop", "alice-phone")), ("beta", BETA[2:4])):
        c.tenants.create(TenantCreate(name=tenant), SYSTEM)
        made[tenant] = [c.peers.create(f"t-{tenant}", PeerCreate(name=p), SYSTEM) for p in peers]
    live.user("alice", role="tenant-admin", tenant="acme")
    live.user("bea", role="tenant-admin", tenant="beta")
    return made


def internal_links(page: Any, base: str) -> set[str]:
    # Pages only: a download (a config, a QR code) is a file, not a page to walk.
    hrefs = page.eval_on_selector_all(
        "a[href^='/']:not([download])", "els => els.map(e => e.getAttribute('href'))"
    )
    return {h.split("#")[0] for h in hrefs if not h.startswith(("/static", "/logout"))}


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_a_tenant_admin_sees_only_its_tenant_on_every_page(
    browser: Any, live: Live, screen: str
) -> None:
    made = world(live)
    page = browser.new_context(viewport=VIEWPORTS[screen]).new_page()
    sign_in(page, live.base, "alice")
    page.wait_for_url(f"{live.base}/")
    # Every page reachable from the menu and from the pages it leads to (one hop further).
    todo, seen = ["/"], set()
    while todo and len(seen) < 40:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.add(path)
        answer = page.goto(f"{live.base}{path}")
        assert answer is not None and answer.status == 200, (path, answer and answer.status)
        text = page.inner_text("body")
        leaked = [name for name in BETA if name in text]
        assert not leaked, f"{path} shows {leaked}"
        assert page.evaluate(OVERFLOW) == [], path
        if path.count("/") <= 2:
            todo += sorted(internal_links(page, live.base) - seen)
    assert {"/", "/tenants", "/audit", "/account", "/dns", "/users"} <= seen, seen
    assert len(seen) >= 20, seen  # its interface's views, each peer's pages, the forms
    # Its own peers are there to be seen, and reached.
    page.goto(f"{live.base}/interfaces/t-acme")
    for peer in made["acme"]:
        assert page.locator(f"tr[data-peer-id='{peer.id}']").count() == 1
    # The other tenant's pages, typed in, are not found.
    for path in ("/interfaces/t-beta", f"/peers/{made['beta'][0].id}", "/tenants/beta/delete"):
        answer = page.goto(f"{live.base}{path}")
        assert answer is not None and answer.status == 404, path
        assert urlsplit(page.url).path == path

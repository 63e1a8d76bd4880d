"""The dashboard on a phone (390x844, an iPhone 12-14's CSS viewport): no page scrolls
sideways, every table fits the screen (rows become cards), the navigation stays on one
line. Checked by measuring the rendered boxes in Chromium, page by page."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.browser.conftest import Live, sign_in
from wirewarden.services.context import SYSTEM
from wirewarden.services.dns_schemas import DnsPolicyIn
from wirewarden.services.node_schemas import NodeUpdate
from wirewarden.services.schemas import InterfaceCreate, PeerCreate, PeerUpdate
from wirewarden.store.dns import DnsStore

SHOTS = os.environ.get("WIREWARDEN_SCREENSHOTS")  # a directory: keep a picture of each page
PHONE = {"width": 390, "height": 844}

# What sticks out past the viewport's right edge: the page itself, any table, the nav.
OVERFLOW = """() => {
  const doc = document.documentElement, width = doc.clientWidth, out = [];
  if (doc.scrollWidth > width) out.push('page ' + doc.scrollWidth);
  for (const el of document.querySelectorAll('table, nav, header, form, dl, pre')) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 0.5 && !el.closest('[data-scrolls]')) {
      out.push(el.tagName.toLowerCase() + '.' + el.className + ' ' + Math.round(box.right));
    }
  }
  return out;
}"""


def fill(live: Live) -> list[str]:
    """A household's server after a week: peers with long names, DNS traffic, audit."""
    c = live.container
    c.interfaces.create(
        InterfaceCreate(name="home", address="10.8.0.1/24", endpoint="vpn.example.test"),
        SYSTEM,
    )
    c.dns.put_policy("kids", DnsPolicyIn(deny=["games.example"]), SYSTEM)
    ids = []
    for name in ("dads-laptop", "grandma-tablet-in-the-kitchen", "kids-phone"):
        peer = c.peers.create("home", PeerCreate(name=name), SYSTEM)
        ids.append(peer.id)
    c.peers.update(ids[2], PeerUpdate(dns_policy="kids", rate_down_kbit=20_000), SYSTEM)
    c.reconciler.reconcile()
    # On the nodes page's map.
    place = NodeUpdate(lat=50.11, lon=8.68, city="Frankfurt", country="DE")
    c.nodes.update(c.settings.node_name, place, SYSTEM)
    who = (ids[2], "kids-phone", "10.8.0.4", "kids")
    now = time.time()
    DnsStore(c.deps.sessions, "local").write_log(
        [
            (
                0.0,
                *who,
                "a-very-long-advertising-tracker-name.cdn.example",
                1,
                "blocked",
                "deny",
                3,
                None,
                None,
                1,
            ),
            (now, *who, "www.example", 1, "resolved", None, 0, "udp://9.9.9.9:53", 12.5, 1),
            (now, *who, "down.example", 1, "servfail", "no upstream", 2, None, None, 1),
        ]
    )
    return [
        "/",
        "/interfaces/home",
        f"/peers/{ids[1]}",
        f"/peers/{ids[2]}/policy",
        "/dns",
        "/users",
        "/acl-profiles",
        "/audit",
        "/tokens",
        "/account",
        "/interfaces/home/settings",
        "/nodes",
    ]


@pytest.mark.parametrize("viewport", [PHONE], ids=["390px"])
def test_every_page_fits_a_phone(browser: Any, live: Live, viewport: dict[str, int]) -> None:
    live.user("alice")
    paths = fill(live)
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    sign_in(page, live.base, "alice")
    page.wait_for_url(f"{live.base}/")
    found = {}
    for path in paths:
        page.goto(f"{live.base}{path}")
        assert page.locator("h1").count() == 1, path
        if SHOTS:
            page.screenshot(
                path=f"{SHOTS}/{path.strip('/').replace('/', '_') or 'overview'}.png",
                full_page=True,
            )
        sticking_out = page.evaluate(OVERFLOW)
        if sticking_out:
            found[path] = sticking_out
        # The main navigation is one line (it scrolls within itself if it must).
        nav = page.locator("nav[aria-label=Main] ul")
        assert nav.evaluate("el => el.getBoundingClientRect().height") < 48, path
    assert found == {}
    context.close()

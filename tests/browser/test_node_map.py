"""The nodes page's world map in Chromium: a node with a position is a marker on the map
where its latitude and longitude are (inside its country's shape), named by its label,
coloured by its status; moving the node moves the marker at the page's refresh, without a
reload; the map draws under the page's CSP (no console error)."""

from __future__ import annotations

import time
from typing import Any

from tests.browser.conftest import Live, sign_in
from wirewarden.fleet.protocol import Heartbeat
from wirewarden.services.context import SYSTEM
from wirewarden.services.node_schemas import NodeUpdate

# Whether the marker's centre, as the browser drew it, falls inside the named country's
# shape (not its bounding box: the United States' spans the globe with the Aleutians).
INSIDE = """code => {
  const marker = document.querySelector('#node-map circle.jvm-marker');
  const land = document.querySelector(`#node-map path[data-code="${code}"]`);
  if (!marker || !land) return null;
  const m = marker.getBoundingClientRect();
  const screen = new DOMPoint(m.left + m.width / 2, m.top + m.height / 2);
  return land.isPointInFill(screen.matrixTransform(land.getScreenCTM().inverse()));
}"""


BEAT = Heartbeat(
    peers=0, online_peers=0, rx_bps=0, tx_bps=0, cpu_percent=1.0, version="test", uptime_s=5
)


def marker_fill(page: Any) -> str | None:
    fill: str | None = page.locator("#node-map circle.jvm-marker").get_attribute("fill")
    return fill


def css_color(page: Any, name: str) -> str:
    value: str = page.evaluate(
        f"getComputedStyle(document.documentElement).getPropertyValue('{name}')"
    )
    return value.strip()


def test_a_node_is_a_marker_where_it_is_and_moves_with_it(browser: Any, live: Live) -> None:
    c = live.container
    node = c.settings.node_name
    c.nodes.update(node, NodeUpdate(lat=50.11, lon=8.68, city="Frankfurt", country="DE"), SYSTEM)
    live.user("alice")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    sign_in(page, live.base, "alice")
    page.wait_for_url(lambda url: not url.endswith("/login"))  # the set-up page: no interface
    page.goto(f"{live.base}/nodes")

    page.wait_for_selector("#node-map circle.jvm-marker")
    assert page.locator("#node-map path.jvm-region").count() > 150  # the world's countries
    assert page.locator("#node-map circle.jvm-marker").count() == 1
    assert page.locator("#node-map text.jvm-label").text_content() == node
    assert page.evaluate(INSIDE, "DE") is True
    assert page.evaluate(INSIDE, "FR") is False
    assert page.locator("[data-node-map-empty]").is_hidden()
    # Coloured by its status: no heartbeat yet (this test runs no loop), grey.
    badge = page.locator(f"tr[data-node='{node}'] [data-label=Status] .badge")
    assert badge.inner_text() == "pending"
    assert marker_fill(page) == css_color(page, "--muted")

    # The node moves and heartbeats; the page's own refresh (the one htmx runs every 10 s)
    # redraws the marker there, green.
    c.nodes.update(node, NodeUpdate(lat=39.74, lon=-104.99, city="Denver", country="US"), SYSTEM)
    c.nodes.local_heartbeat(BEAT)
    page.evaluate(
        "htmx.ajax('GET', '/nodes', {target: '#node-list', select: '#node-list',"
        " swap: 'outerHTML'})"
    )
    # (polled from here: the page's CSP refuses the eval a wait_for_function would need)
    deadline = time.monotonic() + 10
    while page.evaluate(INSIDE, "US") is not True and time.monotonic() < deadline:
        time.sleep(0.1)
    assert page.evaluate(INSIDE, "US") is True
    assert page.evaluate(INSIDE, "DE") is False
    assert page.locator("#node-map circle.jvm-marker").count() == 1
    assert badge.inner_text() == "online"
    assert marker_fill(page) == css_color(page, "--ok")
    assert problems == []
    context.close()


def test_without_positions_the_page_says_how_to_place_a_node(browser: Any, live: Live) -> None:
    live.user("alice")
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, live.base, "alice")
    page.wait_for_url(lambda url: not url.endswith("/login"))  # the set-up page: no interface
    page.goto(f"{live.base}/nodes")
    page.wait_for_selector("#node-map svg")
    assert page.locator("#node-map circle.jvm-marker").count() == 0
    assert "latitude and longitude" in page.locator("[data-node-map-empty]").inner_text()
    context.close()


def test_the_map_takes_the_theme_it_is_switched_to(browser: Any, live: Live) -> None:
    c = live.container
    place = NodeUpdate(lat=50.11, lon=8.68, city="Frankfurt", country="DE")
    c.nodes.update(c.settings.node_name, place, SYSTEM)
    live.user("alice")
    context = browser.new_context(color_scheme="light")
    page = context.new_page()
    sign_in(page, live.base, "alice")
    page.wait_for_url(lambda url: not url.endswith("/login"))
    page.goto(f"{live.base}/nodes")
    page.wait_for_selector("#node-map circle.jvm-marker")
    land = "#node-map path[data-code=DE]"
    assert page.locator(land).get_attribute("fill") == css_color(page, "--line")
    light = css_color(page, "--line")
    page.click("[data-theme-toggle]")
    deadline = time.monotonic() + 5
    while page.locator(land).get_attribute("fill") == light and time.monotonic() < deadline:
        time.sleep(0.1)
    assert page.locator(land).get_attribute("fill") == css_color(page, "--line") != light
    assert page.locator("#node-map circle.jvm-marker").count() == 1
    assert page.evaluate(INSIDE, "DE") is True
    context.close()

"""From the dashboard to a working tunnel: `serve` runs in the netns topology's server
namespace, Chromium (root namespace) reaches it through the demo's relay; the config is
downloaded from the peer page, brought up with wg-quick in a client namespace, and the
peer's row turns online on the open page without a reload."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, free_port, sign_in
from tests.netns.conftest import SKIP_REASON
from tests.netns.product import API_PORT, Product
from tests.netns.topology import Topology, wait_until
from wirewarden.demo.relay import Relay
from wirewarden.domain.names import config_file_name

pytestmark = pytest.mark.netns


class RelayThread:
    """The demo's relay on its own event loop: 127.0.0.1:port here -> serve in the netns."""

    def __init__(self, netns: str, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.relay = Relay(netns, ("127.0.0.1", port), ("127.0.0.1", API_PORT))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.relay.start(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.relay.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def dashboard() -> Iterator[tuple[Topology, str]]:
    if SKIP_REASON is not None:
        pytest.skip(SKIP_REASON)
    topology = Topology()
    product = relay = None
    try:
        product = Product(topology)
        product.env["WIREWARDEN_ADMIN_PASSWORD"] = PASSWORD
        product.start()
        port = free_port()
        relay = RelayThread(topology.server.name, port)
        yield topology, f"http://127.0.0.1:{port}"
    finally:
        if relay is not None:
            relay.close()
        if product is not None:
            product.close()
        topology.close()


def test_peer_from_the_dashboard_brings_a_tunnel_up_and_goes_live(
    browser: Any, dashboard: tuple[Topology, str], tmp_path: Path
) -> None:
    topology, base = dashboard
    client = topology.add_client()
    ifname = topology.unique_ifname("wb")
    page = browser.new_page(accept_downloads=True)
    sign_in(page, base, "admin")
    page.wait_for_url(f"{base}/setup")  # the first run's page: this test takes the long way
    page.click("text=Skip for now")
    page.wait_for_url(f"{base}/")

    page.click("text=New interface")
    page.fill("#f-name", ifname)
    page.fill("#f-address", "10.63.0.1/24")
    page.fill("#f-endpoint", client.server_ip)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/interfaces/{ifname}")

    page.click("text=New peer")
    page.fill("#f-name", "laptop")
    page.click("button[type=submit].primary")
    page.wait_for_url("**/peers/*")
    peer_id = page.url.rsplit("/", 1)[1]
    qr = page.locator("img[data-qr]")
    qr.wait_for()
    assert qr.evaluate("img => img.naturalWidth") > 0  # the SVG loaded and decoded

    with page.expect_download() as download:
        page.click("[data-download-config]")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    config = saved.read_text()
    # wg-quick takes the interface name from the file's: at most 15 characters.
    assert saved.name == config_file_name(ifname, "laptop")
    assert len(saved.stem) <= 15
    assert f"Endpoint = {client.server_ip}:" in config

    page.goto(f"{base}/interfaces/{ifname}")
    badge = f'tr[data-peer-id="{peer_id}"] [data-field=online]'
    dot = page.locator(f'[data-peer-id="{peer_id}"] [data-mesh-dot]')
    assert page.locator(badge).inner_text() == "offline"
    expect(page.locator("body")).to_have_attribute("data-live", "on", timeout=15_000)

    client.wg_quick_up(config)
    wait_until(lambda: client.ping("10.63.0.1", timeout=1), timeout=15, what="ping the gateway")
    assert client.http_get(f"http://{topology.inet_ip}/") == topology.inet_http_body

    # No reload: the socket pushes the handshake and the row turns online.
    expect(page.locator(badge)).to_have_text("online", timeout=20_000)
    # And its dot in the interface's mesh picture lights up.
    expect(dot).to_have_class(re.compile(r"\bon\b"))
    row = page.locator(f'tr[data-peer-id="{peer_id}"]').inner_text()
    assert "never" not in row

    # DNS filtering from the dashboard: a policy made on the DNS page and assigned on the
    # peer's policy page; the name it denies is refused through the tunnel.
    def refused(name: str) -> bool:
        argv = ["dig", "+tries=1", "+time=2", "@10.63.0.1", name]
        out = client.ns.run(argv, check=False, timeout=10).stdout
        return "status: NXDOMAIN" in out

    page.goto(f"{base}/dns")
    page.click("summary:has-text('New policy')")
    page.fill("#new-name", "kids")
    page.fill("#deny-", "games.example")
    page.click("button:has-text('Save policy')")
    expect(page.locator("p.notice")).to_have_text("DNS policy kids saved.")
    assert not refused("games.example")  # the default policy lets it through
    page.goto(f"{base}/peers/{peer_id}/policy")
    page.select_option("#f-dns_policy", "kids")
    page.click("button[type=submit].primary")
    expect(page.locator("p.notice")).to_have_text("Policy of laptop saved.")
    wait_until(lambda: refused("games.example"), timeout=10, what="games.example refused")
    page.close()

"""The household path as a family admin walks it in Chromium, on a desktop and on a phone
(390x844): first-run setup -> a peer with a display name -> a DNS policy made and assigned
from the dashboard, a speed limit in Mbit/s -> a one-time share link opened in a second
browser (another person) -> the config downloaded there -> disable and enable. Every page
on the way is measured for sideways overflow. (The same path through a real tunnel, with
wg-quick, is test_tunnel.py's.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Live, sign_in
from tests.browser.test_phone import OVERFLOW
from wirewarden.domain.names import config_file_name

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def fits(page: Any) -> None:
    assert page.evaluate(OVERFLOW) == [], page.url


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_household_path(browser: Any, live: Live, screen: str, tmp_path: Path) -> None:
    live.user("mum")
    admin = browser.new_context(viewport=VIEWPORTS[screen])
    page = admin.new_page()
    notice = page.locator("p.notice[role=status]")

    sign_in(page, live.base, "mum")
    page.wait_for_url(f"{live.base}/setup")
    fits(page)
    page.fill("#f-endpoint", "vpn.example.test")
    page.fill("#f-name", "home")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{live.base}/interfaces/home")
    expect(notice).to_contain_text("Interface home is up")
    fits(page)

    # A DNS policy for the children's devices, made on the DNS page.
    page.goto(f"{live.base}/dns")
    page.click("summary:has-text('New policy')")
    new = page.locator("details:has(> summary:has-text('New policy'))")
    expect(new.locator("input[name=known]").first).to_be_visible()  # the picker is offered
    page.fill("#new-name", "kids")
    page.fill("#deny-", "games.example")
    page.click("button:has-text('Save policy')")
    page.wait_for_url(f"{live.base}/dns")
    expect(notice).to_have_text("DNS policy kids saved.")
    fits(page)

    # A device named as the family calls it.
    page.goto(f"{live.base}/interfaces/home/peers/new")
    page.fill("#f-display_name", "Grandma's Tablet")
    page.click("button[type=submit].primary")
    page.wait_for_url("**/peers/*")
    expect(page.locator("h1")).to_have_text("Grandma's Tablet")
    expect(notice).to_contain_text("Grandma's Tablet added")
    peer_url = page.url
    fits(page)

    # Its policy: the DNS policy and a speed limit in Mbit/s; a typo first.
    page.click("text=Edit policy")
    page.select_option("#f-dns_policy", "kids")
    page.fill("#f-rate_down_mbit", "twenty")
    page.click("button[type=submit].primary")
    expect(page.locator("#e-rate_down_mbit")).to_have_text(
        "Enter a speed in Mbit/s, like 10 or 2.5."
    )
    fits(page)
    page.fill("#f-rate_down_mbit", "20")
    page.click("button[type=submit].primary")
    page.wait_for_url(peer_url)
    expect(notice).to_have_text("Policy of Grandma's Tablet saved.")
    facts = page.locator("#policy-h + dl, section[aria-labelledby=policy-h] dl")
    expect(facts.first).to_contain_text("kids")
    expect(facts.first).to_contain_text("20 Mbit/s")
    fits(page)

    # A one-time link for grandma, opened in her own browser.
    page.click("button:has-text('Make a one-time share link')")
    # The link is at the public URL; this test's server listens elsewhere.
    link = live.base + urlsplit(page.locator("input.share-url").input_value()).path
    assert "/s/" in link
    fits(page)
    grandma = browser.new_context(viewport=VIEWPORTS[screen], accept_downloads=True)
    other = grandma.new_page()
    other.goto(link)
    fits(other)
    other.click("button:has-text('Reveal the configuration')")
    expect(other.locator("h1")).to_have_text("Your VPN connection: Grandma's Tablet")
    expect(other.locator("figure.qr svg")).to_be_visible()
    expect(other.get_by_role("link", name="Android")).to_be_visible()
    fits(other)
    with other.expect_download() as download:
        other.click("a:has-text('Download')")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == config_file_name("home", "grandmas-tablet")
    assert "PrivateKey = " in saved.read_text()
    other.goto(link)
    expect(other.locator("h1")).to_have_text("Link not valid")
    grandma.close()

    # Disable and enable say what they did.
    page.goto(peer_url)
    page.click("button:has-text('Disable')")
    expect(notice).to_have_text("Grandma's Tablet disabled: its traffic is blocked.")
    page.click("button:has-text('Enable')")
    expect(notice).to_have_text("Grandma's Tablet enabled: it can connect again.")
    page.goto(f"{live.base}/interfaces/home")
    expect(page.locator("table.peers")).to_contain_text("Grandma's Tablet")
    fits(page)
    admin.close()

"""Nothing a dashboard page does blocks the event loop: while a dashboard change waits on a
slow data plane, the API and other pages still answer at once. Through a real uvicorn:
TestClient runs one request at a time and could not show the stall."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import httpx
import pytest

from wirewarden.dataplane.fake import FakeDataplane

APPLY_SECONDS = 4.0
# /healthz answers in milliseconds; a handler blocking the loop holds it for APPLY_SECONDS
# (half of it: room for a loaded CI machine, where a 1 s limit once failed).
PROBE_LIMIT = 2.0
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


class SlowKernel(FakeDataplane):
    """Creating a link takes seconds, as a loaded host's `ip` and `wg` calls can."""

    def _call(self, what: str) -> None:
        if what == "create_interface":
            time.sleep(APPLY_SECONDS)
        super()._call(what)


@pytest.fixture
def dataplane() -> FakeDataplane:
    return SlowKernel()


def csrf_of(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found is not None, html
    return found.group(1)


def test_a_dashboard_change_in_flight_does_not_stall_the_api(
    serve: Any, app: Any, make_user: Any
) -> None:
    make_user("alice", role="admin")
    url = serve(app)
    browser = httpx.Client(base_url=url, timeout=30, follow_redirects=True)
    login = browser.get("/login").text
    page = browser.post(
        "/login",
        data={
            "name": "alice",
            "password": "a long enough passphrase",
            "next": "/",
            "csrf_token": csrf_of(login),
        },
    )
    assert page.status_code == 200, page.text
    csrf = csrf_of(page.text)
    created: list[httpx.Response] = []

    def create() -> None:
        body = {"name": "wg5", "address": "10.55.0.1/24", "csrf_token": csrf}
        created.append(browser.post("/interfaces/new", data=body))

    change = threading.Thread(target=create)
    started = time.monotonic()
    change.start()
    slowest = 0.0
    with httpx.Client(base_url=url, timeout=30) as probe:
        while change.is_alive():
            sent = time.monotonic()
            assert probe.get("/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - sent)
            time.sleep(0.05)
    change.join()
    took = time.monotonic() - started
    browser.close()
    assert created and created[0].status_code == 200, created[0].text
    assert "wg5" in created[0].text
    assert took >= APPLY_SECONDS  # the probe ran while the change was in flight
    assert slowest < PROBE_LIMIT, f"/healthz took {slowest:.3f} s during a dashboard change"

"""Browser tests: Debian's Chromium, headless, driven by Playwright (never `playwright
install`: the browser is the distribution's, /usr/bin/chromium).

`live` runs the real app (create_app over a real SQLite file) under uvicorn in a thread on
127.0.0.1 with the in-memory data plane; the tunnel tests in test_tunnel.py run `serve`
in the netns topology instead and relay it to the root namespace.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from wirewarden.bootstrap import Container, build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "correct-horse-battery-staple"


def _skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"browser tests need Debian's chromium at {CHROMIUM} (scripts/setup.sh)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need the playwright package (pip install -e .[dev])"
    return None


SKIP_REASON = _skip_reason()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and SKIP_REASON is not None:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Module-scoped, not session: Playwright's sync API keeps an event loop running in
    # this thread while it is open, and later tests that call asyncio.run() would fail.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Live:
    container: Container
    dataplane: FakeDataplane
    base: str

    def user(self, name: str, role: str = "admin", **extra: object) -> str:
        self.container.users.create(
            UserCreate(name=name, role=role, password=PASSWORD, **extra),  # type: ignore[arg-type]
            SYSTEM,
        )
        return name


class ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns the signals
        pass


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    dataplane = FakeDataplane()
    settings = Settings(data_dir=tmp_path / "data", public_host="vpn.example.test")
    container = build(settings, dataplane=dataplane, stats_max_age=0)
    app = create_app(container, run_loop=False)
    app.state.status_hub.interval = 0.5
    port = free_port()
    server = ThreadedServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    try:
        yield Live(container, dataplane, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)
        container.engine.dispose()


def sign_in(page: object, base: str, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.fill("#f-name", name)  # type: ignore[attr-defined]
    page.fill("#f-password", password)  # type: ignore[attr-defined]
    page.click("button[type=submit].primary")  # type: ignore[attr-defined]

"""Defect 1: no credentials needed to exhaust memory and disk. Bodies must be capped as they
stream in and not read at all before authentication; Argon2 checks must be bounded and
kept off the event loop."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import argon2
import httpx
import pytest
from fastapi.testclient import TestClient

from tests.security.conftest import rss_bytes
from wirewarden.bootstrap import Container

CHUNK = b"x" * 65536
FIFTY_MB = 50 * 1024 * 1024


class Upload:
    """An ASGI client streaming `size` bytes; `pulled` is what the app actually read."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.pulled = 0

    async def receive(self) -> dict[str, Any]:
        if self.left <= 0:
            await asyncio.sleep(3600)  # a client that sent everything just waits
        chunk = CHUNK[: min(len(CHUNK), self.left)]
        self.left -= len(chunk)
        self.pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": self.left > 0}


def send_raw(
    app: Any, path: str, upload: Upload, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """One POST straight into the ASGI app, as uvicorn would hand it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("203.0.113.9", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    answer: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    asyncio.run(asyncio.wait_for(app(scope, upload.receive, send), 60))
    return answer["status"], answer["headers"], answer["body"]


def test_unauthenticated_50mb_streamed_body_is_never_read(app: Any) -> None:
    before = rss_bytes()
    upload = Upload(FIFTY_MB)
    status, headers, body = send_raw(
        app,
        "/api/v1/interfaces",
        upload,
        {"content-type": "application/json", "transfer-encoding": "chunked"},
    )
    grown = rss_bytes() - before
    assert status == 401, body
    assert upload.pulled == 0  # not one byte of the attacker's body was read
    assert headers["connection"] == "close"  # nor drained afterwards
    assert grown < 5 * 1024 * 1024, f"RSS grew by {grown} bytes"


def test_authenticated_streamed_body_is_cut_at_the_cap(app: Any, token: str) -> None:
    limit = app.state.container.settings.max_body_bytes
    before = rss_bytes()
    upload = Upload(FIFTY_MB)
    status, _, body = send_raw(
        app,
        "/api/v1/interfaces",
        upload,
        {
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "transfer-encoding": "chunked",
        },
    )
    grown = rss_bytes() - before
    assert status == 413 and b'"detail"' in body
    assert upload.pulled <= limit + len(CHUNK)
    assert grown < 5 * 1024 * 1024, f"RSS grew by {grown} bytes"


def test_content_length_over_the_cap_is_refused_before_reading(app: Any, token: str) -> None:
    upload = Upload(FIFTY_MB)
    status, _, body = send_raw(
        app,
        "/api/v1/interfaces",
        upload,
        {
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "content-length": str(1000 * 1024 * 1024),
        },
    )
    assert status == 413 and b"larger than" in body
    assert upload.pulled == 0


def test_unauthenticated_multipart_is_never_parsed(app: Any) -> None:
    # A form post to an API route: its CSRF field used to be read before the session was.
    upload = Upload(FIFTY_MB)
    before = rss_bytes()
    status, _, _ = send_raw(
        app,
        "/api/v1/auth/logout",
        upload,
        {"content-type": "multipart/form-data; boundary=b", "transfer-encoding": "chunked"},
    )
    assert status == 401
    assert upload.pulled == 0  # nothing parsed, nothing spooled to temporary files
    assert rss_bytes() - before < 5 * 1024 * 1024


@pytest.fixture
def admin_browser(browser: Any, make_user: Any) -> TestClient:
    make_user("root", role="admin")
    make_user("alice")
    signed_in: TestClient = browser("root")
    return signed_in


def test_a_form_with_many_parts_is_refused(admin_browser: TestClient) -> None:
    csrf = admin_browser.csrf  # type: ignore[attr-defined]
    fields = [("csrf_token", csrf)] + [(f"f{i}", "x") for i in range(600)]
    response = admin_browser.post("/users/alice/disable", files=[(k, (None, v)) for k, v in fields])
    assert response.status_code == 400 and "fields" in response.json()["detail"]
    assert admin_browser.get("/api/v1/users/alice").json()["disabled"] is False


def test_a_form_with_a_file_is_refused(admin_browser: TestClient) -> None:
    csrf = admin_browser.csrf  # type: ignore[attr-defined]
    response = admin_browser.post(
        "/users/alice/disable",
        data={"csrf_token": csrf},
        files={"upload": ("a.bin", b"\0" * 1000, "application/octet-stream")},
    )
    assert response.status_code == 400 and "files" in response.json()["detail"]


def test_public_sign_in_body_is_capped_too(anon: TestClient) -> None:
    response = anon.post("/api/v1/auth/login", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                         headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 413 and "detail" in response.json()


@pytest.fixture
def hash_watch(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Counts Argon2 checks running at once (and the most seen)."""
    seen = {"now": 0, "most": 0}
    lock = threading.Lock()
    real = argon2.PasswordHasher.verify

    def verify(self: argon2.PasswordHasher, stored: Any, password: Any) -> bool:
        with lock:
            seen["now"] += 1
            seen["most"] = max(seen["most"], seen["now"])
        try:
            # As long as the production cost takes (the test app's hashes are cheap): checks
            # that nothing bounds would overlap, and the count would show it.
            time.sleep(0.1)
            return real(self, stored, password)
        finally:
            with lock:
                seen["now"] -= 1

    monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)
    yield seen


def test_parallel_sign_ins_hash_a_bounded_number_at_once(
    serve: Any, app: Any, container: Container, hash_watch: dict[str, int]
) -> None:
    url = serve(app)
    answers: list[int] = []

    def attempt(i: int) -> None:
        body = {"name": f"nobody{i}", "password": "wrong password here"}
        answers.append(httpx.post(f"{url}/api/v1/auth/login", json=body, timeout=60).status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Past a few seconds' queue (a loaded machine) a sign-in is told to come back: 503.
    assert set(answers) <= {401, 503} and 401 in answers
    assert 1 <= hash_watch["most"] <= container.settings.password_hash_concurrency


def test_dashboard_sign_in_leaves_the_event_loop_free(
    app: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user("alice")
    real = argon2.PasswordHasher.verify

    def slow(self: argon2.PasswordHasher, stored: Any, password: Any) -> bool:
        time.sleep(1.0)  # a machine under load
        return real(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", slow)

    async def scenario() -> tuple[float, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as web:
            page = await web.get("/login")
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert found is not None
            form = {"name": "alice", "password": "wrong password", "csrf_token": found[1]}
            started = time.monotonic()
            login = asyncio.create_task(web.post("/login", data=form))
            await asyncio.sleep(0.2)  # the sign-in is checking its password now
            health = await web.get("/healthz")
            waited = time.monotonic() - started - 0.2
            assert health.status_code == 200
            return waited, (await login).status_code

    waited, login_status = asyncio.run(scenario())
    assert login_status == 401
    assert waited < 0.5, f"/healthz waited {waited:.2f} s behind a sign-in"

"""Defect 3: a share link's token was written to the access log, and a link kept working
after its creator was disabled."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from wirewarden.web.accesslog import SERVER_LOGGERS, server_log_config


@pytest.fixture
def member_link(client: TestClient, browser: Any, make_user: Any) -> tuple[TestClient, str]:
    """A member's own peer and a share link the member made to it."""
    client.post("/api/v1/interfaces", json={"name": "wg0", "address": "10.8.0.1/24"})
    make_user("alice")
    alice = browser("alice")
    headers = {"X-CSRF-Token": alice.csrf}
    peer = alice.post("/api/v1/interfaces/wg0/peers", json={"name": "phone"}, headers=headers)
    assert peer.status_code == 201, peer.text
    share = alice.post(f"/api/v1/peers/{peer.json()['id']}/share", json={}, headers=headers)
    assert share.status_code == 201, share.text
    # The link is absolute (WIREWARDEN_PUBLIC_URL); the tests open its path on their server.
    return alice, urlsplit(share.json()["url"]).path


class Lines(logging.Handler):
    """Keeps each record's message, as a journal would show it."""

    def __init__(self, into: list[str]) -> None:
        super().__init__()
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@pytest.fixture
def server_logs() -> Iterator[list[str]]:
    """Lines uvicorn's loggers write, as `serve` configures them; the loggers are put back
    as they were afterwards."""
    saved = {}
    for name in ("uvicorn", *SERVER_LOGGERS):
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.filters[:], logger.level, logger.propagate)
    lines: list[str] = []
    yield lines
    for name, (handlers, filters, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.filters[:] = handlers, filters
        logger.setLevel(level)
        logger.propagate = propagate


def test_share_token_never_reaches_the_access_log(
    serve: Any, app: Any, member_link: tuple[TestClient, str], server_logs: list[str]
) -> None:
    _, path = member_link
    token = path.rsplit("/", 1)[1]
    url = serve(app, log_config=server_log_config("info"))
    # Added once uvicorn configured its loggers (which replaces their handlers).
    logging.getLogger("uvicorn.access").addHandler(Lines(server_logs))
    # A generous timeout: the first request to a fresh server imports the page's
    # modules lazily, which can take seconds on a loaded CI machine.
    with httpx.Client(base_url=url, timeout=60) as http:
        assert http.get(path).status_code == 200
        assert http.post(path, params={"format": "conf"}).status_code == 200
        assert http.get(path).status_code == 404  # used up
    assert len([line for line in server_logs if "/s/[redacted]" in line]) == 3
    assert not [line for line in server_logs if token in line]


def test_disabled_creators_link_is_gone(
    client: TestClient, anon: TestClient, member_link: tuple[TestClient, str]
) -> None:
    _, path = member_link
    assert anon.get(path).status_code == 200
    assert client.patch("/api/v1/users/alice", json={"disabled": True}).status_code == 200
    assert anon.get(path).status_code == 404
    assert anon.post(path, params={"format": "conf"}).status_code == 404
    # Enabling the account again does not bring the link back.
    assert client.patch("/api/v1/users/alice", json={"disabled": False}).status_code == 200
    assert anon.post(path, params={"format": "conf"}).status_code == 404


def test_deleted_creators_link_is_gone(
    client: TestClient, anon: TestClient, member_link: tuple[TestClient, str]
) -> None:
    _, path = member_link
    assert client.delete("/api/v1/users/alice").status_code == 204
    assert anon.get(path).status_code == 404
    assert anon.post(path, params={"format": "conf"}).status_code == 404

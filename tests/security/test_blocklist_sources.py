"""Blocklist sources must not read host files nor reach internal services: a 0600 file's
lines never come back in any answer, and a loopback URL is refused before any connection
is made (the test's own loopback server sees no request)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container
from wirewarden.dns.lists import ListStore, local_lists_dir

DNS = "/api/v1/dns"
SECRET = "root-secret-line-7f3a9c"


class _Recorder(BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        body = b"0.0.0.0 ads.example\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[tuple[int, list[str]]]:
    _Recorder.paths = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], _Recorder.paths
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "shadow"
    # One line parses as a hosts entry: the file is taken for a list, the rest is "junk".
    path.write_text(f"10.1.2.3 db.internal.example\n{SECRET}:$6$hash:19000:0:99999:7:::\n")
    path.chmod(0o600)
    return path


def _every_answer(client: TestClient) -> str:
    return "".join(
        client.get(url).text
        for url in (f"{DNS}/policies", f"{DNS}/blocklists", f"{DNS}/policies/p1", "/api/v1/audit")
    )


def test_host_files_cannot_be_read_through_a_list(
    client: TestClient, container: Container, secret_file: Path
) -> None:
    local = local_lists_dir(container.settings.data_dir)
    (local / "escape.txt").symlink_to(secret_file)
    traversal = "../" * 12 + str(secret_file).lstrip("/")
    for source in (str(secret_file), traversal, "escape.txt", f"file://{secret_file}"):
        response = client.put(f"{DNS}/policies/p1", json={"blocklists": [source]})
        assert response.status_code == 422, (source, response.text)
        assert SECRET not in response.text
    assert client.post(f"{DNS}/blocklists/refresh", json={}).status_code == 200
    assert SECRET not in _every_answer(client)


def test_junk_examples_are_for_admins_only(
    client: TestClient,
    container: Container,
    make_user: Callable[..., str],
    browser: Callable[..., TestClient],
) -> None:
    local = local_lists_dir(container.settings.data_dir)
    (local / "mixed.txt").write_text("0.0.0.0 ads.example\nprivate words here\n")
    made = client.put(f"{DNS}/policies/p1", json={"blocklists": ["mixed.txt"]})
    assert made.status_code == 201, made.text
    assert made.json()["lists"][0]["junk_examples"] == ["private words here"]
    member = browser(make_user("mia"))
    for url in (f"{DNS}/policies", f"{DNS}/blocklists", f"{DNS}/policies/p1"):
        response = member.get(url)
        assert response.status_code == 200 and "private words" not in response.text, url


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_a_loopback_url_is_refused_before_connecting(
    client: TestClient, loopback_server: tuple[int, list[str]], host: str
) -> None:
    port, seen = loopback_server
    url = f"http://{host}:{port}/metrics"
    response = client.put(f"{DNS}/policies/p1", json={"blocklists": [url]})
    assert response.status_code == 422, response.text
    assert "loopback" in response.text
    assert seen == []


def test_the_setting_allows_a_loopback_list_server(
    tmp_path: Path, loopback_server: tuple[int, list[str]]
) -> None:
    port, seen = loopback_server
    status = ListStore(tmp_path, allow_private=True).fetch(f"http://127.0.0.1:{port}/l.txt")
    assert status.error is None and status.entries == 1 and seen == ["/l.txt"]


def test_a_list_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    store = ListStore(tmp_path / "lists", max_bytes=1024)
    store.local_dir.mkdir(parents=True)
    (store.local_dir / "big.txt").write_text("0.0.0.0 ads.example\n" * 200)
    status = store.fetch("big.txt")
    assert status.error is not None and "larger than" in status.error and not status.has_copy

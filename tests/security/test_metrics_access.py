"""Defect 4: /metrics answered any loopback client without a token, and behind a reverse
proxy on the same host every visitor is loopback. It lists peer names and public keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container, build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.web.app import create_app

LOOPBACK = ("127.0.0.1", 40000)
PROXY_HEADERS = [
    {"X-Forwarded-For": "198.51.100.7"},
    {"X-Real-IP": "198.51.100.7"},
    {"Forwarded": "for=198.51.100.7"},
    {"X-Forwarded-Host": "vpn.example.test"},
    {"X-Forwarded-Proto": "https"},
    {"Via": "1.1 proxy"},
]


@pytest.mark.parametrize("headers", PROXY_HEADERS, ids=lambda h: next(iter(h)))
def test_metrics_through_a_local_proxy_need_a_token(
    container: Container, token: str, headers: dict[str, str]
) -> None:
    with TestClient(create_app(container, run_loop=False), client=LOOPBACK) as local:
        assert local.get("/metrics").status_code == 200  # a scraper on the host itself
        refused = local.get("/metrics", headers=headers)
        assert refused.status_code == 401 and "wirewarden_" not in refused.text
        bearer = {**headers, "Authorization": f"Bearer {token}"}
        assert local.get("/metrics", headers=bearer).status_code == 200


@pytest.fixture
def listening_everywhere(tmp_path: Path) -> Iterator[Container]:
    built = build(Settings(data_dir=tmp_path / "d", http="0.0.0.0:8000"), FakeDataplane())
    yield built
    built.engine.dispose()


def test_metrics_need_a_token_when_serve_listens_beyond_loopback(
    listening_everywhere: Container,
) -> None:
    app = create_app(listening_everywhere, run_loop=False)
    with TestClient(app, client=LOOPBACK) as local:
        assert local.get("/metrics").status_code == 401

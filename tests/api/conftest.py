"""API tests: the ASGI app over a real SQLite file, with the in-memory data plane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container, build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.services.context import SYSTEM
from wirewarden.web.app import create_app


@pytest.fixture
def dataplane() -> FakeDataplane:
    return FakeDataplane()


@pytest.fixture
def container(tmp_path: Path, dataplane: FakeDataplane) -> Iterator[Container]:
    settings = Settings(data_dir=tmp_path / "data", public_host="vpn.example.test")
    built = build(settings, dataplane=dataplane, stats_max_age=0)
    yield built
    built.engine.dispose()


@pytest.fixture
def token(container: Container) -> str:
    return container.tokens.create("tests", ["read", "write", "admin"], SYSTEM)


@pytest.fixture
def client(container: Container, token: str) -> Iterator[TestClient]:
    app = create_app(container, run_loop=False)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


@pytest.fixture
def anon(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, run_loop=False)) as test_client:
        yield test_client

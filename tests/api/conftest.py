"""API tests: the ASGI app over a real database (SQLite, then PostgreSQL: the `database`
fixture of tests/conftest.py), with the in-memory data plane."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.ports import free_port
from wirewarden.bootstrap import Container, build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.store.tables import Base
from wirewarden.web.app import create_app

# Argon2 at its cheapest (one pass over 8 KiB): the production cost, ~0.3 s a hash here,
# spent on every user made and sign-in was most of these suites' time. What the hashing
# itself must do is tested in tests/unit/test_accounts.py at the real cost.
FAST_HASHES: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 8,
    "argon2_parallelism": 1,
}


def build_fast(settings: Settings, **kwargs: Any) -> Container:
    """`bootstrap.build` with cheap password hashes (and whatever else the test passes)."""
    return build(settings.model_copy(update=FAST_HASHES), **kwargs)


def stored_bytes(container: Container) -> bytes:
    """Everything the database holds, to search for a secret that must not be there: the
    SQLite files (freed pages and the WAL included), or on PostgreSQL every value of every
    row of every table."""
    container.engine.dispose()  # close every connection: all of it is in the files now
    if container.settings.database_url is None:
        return b"".join(p.read_bytes() for p in container.settings.data_dir.glob("wirewarden.db*"))
    values: list[bytes] = []
    with container.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                values += [v if isinstance(v, bytes) else str(v).encode() for v in row]
    return b"\n".join(values)


@pytest.fixture
def cli_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str | None
) -> Iterator[FakeDataplane]:
    """The CLI on this run's database (WIREWARDEN_DATA_DIR, WIREWARDEN_DATABASE_URL), with
    the in-memory data plane and cheap hashes; yields the fake kernel."""
    import wirewarden.cli.main as cli_main

    monkeypatch.setenv("WIREWARDEN_DATA_DIR", str(tmp_path / "data"))
    if database_url:
        monkeypatch.setenv("WIREWARDEN_DATABASE_URL", database_url)
    fake = FakeDataplane()

    def fast(settings: Settings, **kwargs: Any) -> Container:
        return build_fast(settings, dataplane=fake, **kwargs)

    monkeypatch.setattr(cli_main, "build", fast)
    yield fake


@pytest.fixture
def dataplane() -> FakeDataplane:
    return FakeDataplane()


@pytest.fixture
def container(
    tmp_path: Path, dataplane: FakeDataplane, database_url: str | None
) -> Iterator[Container]:
    settings = Settings(
        data_dir=tmp_path / "data", public_host="vpn.example.test", database_url=database_url
    )
    built = build_fast(settings, dataplane=dataplane, stats_max_age=0)
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


# ---- accounts (users, sessions) ----

PASSWORD = "a long enough passphrase"


@pytest.fixture
def app(container: Container) -> Any:
    return create_app(container, run_loop=False)


@pytest.fixture
def make_user(container: Container) -> Callable[..., str]:
    """Create a user through the service; returns the name."""

    def make(name: str, role: str = "member", **extra: Any) -> str:
        container.users.create(
            UserCreate(name=name, role=role, password=PASSWORD, **extra),  # type: ignore[arg-type]
            SYSTEM,
        )
        return name

    return make


@pytest.fixture
def browser(app: Any) -> Iterator[Callable[..., TestClient]]:
    """A factory of signed-in cookie clients (a browser each), with their CSRF token set
    as the `csrf` attribute."""
    opened: list[TestClient] = []

    def sign_in(name: str, password: str = PASSWORD) -> TestClient:
        test_client = TestClient(app)
        opened.append(test_client)
        response = test_client.post("/api/v1/auth/login", json={"name": name, "password": password})
        assert response.status_code == 200, response.text
        test_client.csrf = response.json()["csrf_token"]  # type: ignore[attr-defined]
        return test_client

    yield sign_in
    for test_client in opened:
        test_client.close()


@pytest.fixture
def client_of(app: Any) -> Iterator[Callable[[str], TestClient]]:
    """A factory of bearer-token clients."""
    opened: list[TestClient] = []

    def make(token: str) -> TestClient:
        test_client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
        opened.append(test_client)
        return test_client

    yield make
    for test_client in opened:
        test_client.close()


# ---- a real server, for what TestClient cannot show (concurrency, the event loop) ----

Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start the app under a real uvicorn on 127.0.0.1 (in a thread); returns its base URL.
    Every server is stopped after the test."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(asgi: Any, **config: Any) -> str:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(asgi, host="127.0.0.1", port=port, lifespan="off", **config)
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)

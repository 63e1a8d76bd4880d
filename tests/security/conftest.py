"""Security tests: the attacker's requests against the API tests' app (their fixtures,
imported rather than copied), in-process or through a real uvicorn on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from tests.api.conftest import (  # noqa: F401 - fixtures, found by pytest by name
    PASSWORD,
    anon,
    app,
    browser,
    client,
    client_of,
    container,
    dataplane,
    make_user,
    token,
)
from tests.ports import free_port

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


def rss_bytes() -> int:
    """This process's resident memory now (the app runs in it)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")

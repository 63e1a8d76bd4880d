"""Fixtures for end-to-end tests in network namespaces (see topology.py).

Every test collected in this directory gets the `netns` marker, and is skipped, with the
reason, where these tests cannot run: not root, or a needed tool missing. (The skip is a
marker added at collection rather than pytest.skip() at import: a conftest that raises
Skipped while pytest loads it as an initial conftest, as in `pytest tests/netns`, crashes
pytest instead of skipping.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns.product import Product
from tests.netns.topology import Topology, missing_tools

_HERE = Path(__file__).parent


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "netns end-to-end tests need root (network namespaces, veth, nftables)"
    missing = missing_tools()
    if missing:
        return f"netns end-to-end tests need these tools on PATH: {', '.join(missing)}"
    return None


SKIP_REASON = _skip_reason()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.netns)
        if SKIP_REASON is not None:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture
def topology() -> Iterator[Topology]:
    """A fresh server/inet/lan topology; everything it made is removed afterwards."""
    if SKIP_REASON is not None:
        pytest.skip(SKIP_REASON)
    topo = Topology()
    try:
        yield topo
    finally:
        topo.close()


@pytest.fixture
def product(topology: Topology) -> Iterator[Product]:
    """`wirewarden serve` running in the server namespace (reconcile period 1 s)."""
    running = Product(topology)
    try:
        running.start()
        yield running
    finally:
        running.close()

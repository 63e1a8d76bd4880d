"""serve's wiring of the dump cache: each reconcile pass hands its WireGuard dump on, and
the collector waits for it only where passes come at least as often as collections."""

from __future__ import annotations

from pathlib import Path

import pytest

from wirewarden import bootstrap
from wirewarden.config import load_settings


@pytest.mark.parametrize(("reconcile", "waits"), [("10", True), ("1", True), ("30", False)])
def test_the_collector_waits_for_the_pass_s_dump_only_if_passes_come_as_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reconcile: str, waits: bool
) -> None:
    monkeypatch.setenv("WIREWARDEN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WIREWARDEN_RECONCILE_PERIOD", reconcile)
    monkeypatch.setenv("WIREWARDEN_METRICS_PERIOD", "10")
    plane = bootstrap.build(load_settings(None), runtime=True)  # the kernel's data plane
    try:
        node = plane.node
        assert node.dataplane.dumped == node.stats.offer  # type: ignore[attr-defined]
        assert (node.collector.fresh == node.stats.wait_fresh) is waits
    finally:
        plane.engine.dispose()

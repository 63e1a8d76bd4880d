"""serve's and an agent's wiring of the dump cache: each reconcile pass hands its WireGuard
dump on, and the periodic readers (serve's collector, an agent's heartbeat and report) wait
for it only where passes come at least as often as they do."""

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


@pytest.mark.parametrize(
    ("reconcile", "metrics", "waits"),
    [("10", "10", True), ("5", "30", True), ("30", "30", False), ("10", "5", False)],
)
def test_an_agent_s_heartbeat_and_report_wait_for_the_pass_s_dump_only_if_passes_come_as_often(
    tmp_path: Path, reconcile: str, metrics: str, waits: bool
) -> None:
    settings = load_settings(None).model_copy(
        update={
            "data_dir": tmp_path,
            "agent_server": "https://cp.example.test",
            "agent_join_token": "wwj_test",
            "dns_enabled": False,
            "reconcile_period": float(reconcile),
            "metrics_period": float(metrics),
        }
    )
    agent, host = bootstrap.build_agent(settings, version="test")  # the kernel's data plane
    assert host.reconciler.dataplane.dumped == host.stats.offer  # type: ignore[attr-defined]
    assert agent.timing.align is waits

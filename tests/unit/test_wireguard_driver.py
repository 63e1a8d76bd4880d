"""The WireGuard driver's create is idempotent: a running device is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from wirewarden.dataplane import links, wireguard
from wirewarden.domain.state import ObservedLink


def test_create_leaves_a_running_userspace_device_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wireguard, "UAPI_DIR", tmp_path)
    (tmp_path / "wg7.sock").touch()
    monkeypatch.setattr(
        links, "observe_links", lambda names: {"wg7": ObservedLink("wg7", True, 1420, ())}
    )

    def spawn(*_: object) -> None:
        raise AssertionError("a second wireguard-go must not start")

    monkeypatch.setattr(wireguard, "spawn_detached", spawn)
    driver = wireguard.WireGuard("wireguard-go", tmp_path)
    driver.create("wg7")
    assert (tmp_path / "wg7.sock").exists()  # the live device's socket is still there


def test_create_starts_userspace_when_the_link_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wireguard, "UAPI_DIR", tmp_path)
    monkeypatch.setattr(links, "observe_links", lambda names: {})
    started: list[list[str]] = []

    def spawn(argv: list[str], *_: object) -> None:
        started.append(argv)
        raise RuntimeError("stop here")

    monkeypatch.setattr(wireguard, "spawn_detached", spawn)
    with pytest.raises(RuntimeError, match="stop here"):
        wireguard.WireGuard("wireguard-go", tmp_path).create("wg7")
    assert started == [["wireguard-go", "-f", "wg7"]]

"""Room for many wireguard-go devices: the inotify instance limit is raised in steps (the
kernel's default of 128 stops the 128th or so device), never lowered, and left alone where
it cannot be read or written."""

from __future__ import annotations

from pathlib import Path

from wirewarden.dataplane.sysctl import inotify_room


def test_the_limit_grows_in_steps_and_never_shrinks(tmp_path: Path) -> None:
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    assert inotify_room(1, limit) == 1024 and limit.read_text() == "1024\n"
    assert inotify_room(700, limit) == 1024  # 700 + headroom still fits
    assert inotify_room(900, limit) == 2048 and limit.read_text() == "2048\n"
    limit.write_text("65536\n")
    assert inotify_room(5, limit) == 65536 and limit.read_text() == "65536\n"


def test_an_unreadable_or_read_only_limit_is_left_alone(tmp_path: Path) -> None:
    assert inotify_room(1, tmp_path / "missing") is None
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    limit.chmod(0o444)
    try:
        # root writes through a 0444 file: only check that a refusal is not an error
        assert inotify_room(1, limit) in (128, 1024)
    finally:
        limit.chmod(0o644)

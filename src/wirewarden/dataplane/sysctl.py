"""Host settings this node needs, read and set through /proc/sys: IP forwarding, and room
for many userspace WireGuard devices."""

from __future__ import annotations

from pathlib import Path

_KEYS = (
    Path("/proc/sys/net/ipv4/ip_forward"),
    Path("/proc/sys/net/ipv6/conf/all/forwarding"),
)


# Each wireguard-go holds an inotify instance (the watch on its UAPI socket): with the
# kernel's default of 128 per user, the 128th or so device fails to start ("too many open
# files"), found by bench/tenants_200.py. Raised in steps, never lowered.
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_STEP = 1024
INOTIFY_HEADROOM = 256  # other root processes' instances (systemd, editors, agents)


def inotify_room(devices: int, path: Path = INOTIFY_INSTANCES) -> int | None:
    """Make sure `devices` wireguard-go processes and the host's own fit; the limit now
    (None: unknown, e.g. no /proc/sys here)."""
    try:
        current = int(path.read_text())
    except (OSError, ValueError):
        return None
    wanted = -(-(devices + INOTIFY_HEADROOM) // INOTIFY_STEP) * INOTIFY_STEP
    if current >= wanted:
        return current
    try:
        path.write_text(f"{wanted}\n")
    except OSError:  # not ours to change (a container): the start says why it failed
        return current
    return wanted


def forwarding_enabled() -> bool:
    return all(p.read_text().strip() == "1" for p in _KEYS if p.exists())


def enable_forwarding() -> None:
    for path in _KEYS:
        if path.exists():
            path.write_text("1\n")

"""IP forwarding, read and set through /proc/sys."""

from __future__ import annotations

from pathlib import Path

_KEYS = (
    Path("/proc/sys/net/ipv4/ip_forward"),
    Path("/proc/sys/net/ipv6/conf/all/forwarding"),
)


def forwarding_enabled() -> bool:
    return all(p.read_text().strip() == "1" for p in _KEYS if p.exists())


def enable_forwarding() -> None:
    for path in _KEYS:
        if path.exists():
            path.write_text("1\n")

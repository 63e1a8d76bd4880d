"""Facts about this host that need a system call: its capabilities and its outbound address."""

from __future__ import annotations

import socket
from pathlib import Path

CAP_NET_ADMIN = 12  # linux/capability.h
STATUS = Path("/proc/self/status")
NEEDS_NET_ADMIN = "needs root or CAP_NET_ADMIN"


def effective_caps(status_text: str) -> int:
    """The CapEff bit mask from the text of /proc/<pid>/status (0 when absent)."""
    for line in status_text.splitlines():
        name, _, value = line.partition(":")
        if name == "CapEff":
            return int(value.strip(), 16)
    return 0


def has_net_admin(status: Path = STATUS) -> bool:
    """Whether this process may change links, addresses, routes and nftables. Read from the
    kernel rather than guessed from the uid: root in a container may lack it, and a service
    user given AmbientCapabilities=CAP_NET_ADMIN has it."""
    try:
        text = status.read_text()
    except OSError:
        return False
    return bool(effective_caps(text) >> CAP_NET_ADMIN & 1)


def outbound_address() -> str | None:
    """The source address this host would use towards the internet (no packet is sent:
    connecting a UDP socket only picks a route), or None without a default route."""
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                found: str = probe.getsockname()[0]
                return found
        except OSError:
            continue
    return None


PROC_STAT = Path("/proc/stat")


def cpu_times(stat: Path = PROC_STAT) -> tuple[int, int]:
    """This host's CPU time so far, in clock ticks: (busy, total) over all cores, from
    the first line of /proc/stat (idle and iowait are not busy)."""
    fields = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # guest time is already counted in user and nice
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return total - idle, total

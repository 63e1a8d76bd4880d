"""The list of known DNS-over-HTTPS endpoint addresses (shipped, overridable)."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

log = logging.getLogger(__name__)
SHIPPED = Path(__file__).with_name("doh-addresses.txt")


def parse_addresses(text: str) -> list[str]:
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(str(ipaddress.ip_network(line, strict=False)))
        except ValueError:
            log.warning("DoH address list: skipping %r", line)
    return out


def load_doh_addresses(data_dir: Path) -> list[str]:
    """The data dir's own list where there is one (an update), else the shipped one."""
    override = data_dir / "dns" / "doh-addresses.txt"
    path = override if override.exists() else SHIPPED
    try:
        return parse_addresses(path.read_text())
    except OSError:
        return []


def system_upstreams(resolv_conf: Path = Path("/etc/resolv.conf")) -> str:
    """The host's nameservers as udp:// upstreams (the default when none are set)."""
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return ""
    servers = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            host = parts[1].split("%")[0]
            servers.append(f"udp://[{host}]:53" if ":" in host else f"udp://{host}:53")
    return ",".join(servers)

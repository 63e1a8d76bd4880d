"""Where this peer's tunnel is: the gateway of the server (the tunnel API's address) and
the local tunnel address, from the kernel (no tool, no root needed)."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

SIOCGIFADDR = 0x8915
NET = Path("/sys/class/net")


def _is_wireguard(link: Path) -> bool:
    """A kernel WireGuard device, or the TUN device wireguard-go makes."""
    try:
        if "DEVTYPE=wireguard" in (link / "uevent").read_text():
            return True
    except OSError:
        return False
    return (link / "tun_flags").exists() and link.name not in ("tun0",)


def _ipv4_of(name: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(
                sock.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode())
            )
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def guess_gateways() -> list[str]:
    """Candidate gateways: for each WireGuard link's IPv4 address, the first address of its
    /24 (where WireWarden puts an interface's gateway unless told otherwise)."""
    found = []
    for link in sorted(NET.iterdir()) if NET.exists() else []:
        if not _is_wireguard(link):
            continue
        address = _ipv4_of(link.name)
        if address is None:
            continue
        net = ipaddress.ip_network(f"{address}/24", strict=False)
        found.append(str(net.network_address + 1))
    return found


def source_towards(gateway: str, port: int) -> str:
    """The local address packets to the gateway leave from: the tunnel address (no packet
    is sent: connecting a UDP socket only picks the route)."""
    family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((gateway, port))
        return str(probe.getsockname()[0])

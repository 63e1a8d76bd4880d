"""Ports for test servers on loopback."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP (a DNS listener opens both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")

"""WireGuard's cross-platform userspace API (UAPI) messages, as pure text.

wireguard-go reads these on its socket in /var/run/wireguard; `wg` writes the same
messages after parsing a config. Writing them ourselves spares a process per change.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator

from wirewarden.domain.state import PeerState

ZERO_KEY = "0" * 64  # an all-zero preshared key means "none" to WireGuard


def key_hex(key: str) -> str:
    return base64.b64decode(key, validate=True).hex()


def set_peers(peers: Iterable[PeerState]) -> str:
    """A `set` message that makes each listed peer exactly as given, others untouched."""
    return "".join(set_peers_chunks(peers))


def set_peers_chunks(peers: Iterable[PeerState], lines_per_chunk: int = 2048) -> Iterator[str]:
    """The same message in pieces: wireguard-go applies each line as it arrives, so a piece
    sent while the next is built overlaps our work with the device's."""
    lines = ["set=1"]
    for peer in peers:
        lines += [
            f"public_key={key_hex(peer.public_key)}",
            f"preshared_key={key_hex(peer.preshared_key) if peer.preshared_key else ZERO_KEY}",
            f"persistent_keepalive_interval={peer.persistent_keepalive or 0}",
            "replace_allowed_ips=true",
        ]
        lines += [f"allowed_ip={network}" for network in peer.allowed_ips]
        if len(lines) >= lines_per_chunk:
            yield "\n".join(lines) + "\n"
            lines = []
    yield "\n".join(lines) + "\n\n" if lines else "\n"


def remove_peers(public_keys: Iterable[str]) -> str:
    lines = ["set=1"]
    for key in public_keys:
        lines += [f"public_key={key_hex(key)}", "remove=true"]
    return "\n".join(lines) + "\n\n"


def errno_of(reply: str) -> int:
    """The errno of a `set` reply (`errno=0` on success); -1 when the reply is malformed."""
    for line in reply.splitlines():
        key, _, value = line.partition("=")
        if key == "errno":
            return int(value) if value.lstrip("-").isdigit() else -1
    return -1

"""What a flow was found to be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

App = Literal["bittorrent", "tls", "quic", "http", "ssh", "other"]

# The classes a policy may block (`block_apps`), in the order a page lists them.
APPS: tuple[App, ...] = ("bittorrent", "tls", "quic", "http", "ssh", "other")


@dataclass(frozen=True)
class Verdict:
    """`app` None: not decided yet, more payload is needed. `name` is the TLS/QUIC
    server name or the HTTP Host when the flow carries one."""

    app: App | None
    name: str | None = None

    @property
    def decided(self) -> bool:
        return self.app is not None


UNDECIDED = Verdict(None)

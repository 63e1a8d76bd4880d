"""Server names a classified flow carried (TLS and QUIC SNI, the HTTP Host), as the
queue reader tells them to the process that keeps them (WIREWARDEN_CLASSIFY_NAMES).

A name comes from a peer's packet: hostile input. Only a host name of letters, digits,
`-`, `_` and dots, at most 253 characters, lower-cased, is kept; anything else is no
name. A message is one small JSON array; one that does not decode is dropped, never an
error (the reader and the keeper are separate processes and either may be of another
version during an upgrade).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from wirewarden.domain.classify.verdict import App

_NAME = re.compile(r"^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$")
MAX_NAME = 253
# The classes a name comes with (an SSH banner or BitTorrent names no server).
NAMED: frozenset[App] = frozenset({"tls", "quic", "http"})


def clean(name: str | None) -> str | None:
    """The name as kept, or None when it is not a host name."""
    if not name or len(name) > MAX_NAME:
        return None
    lowered = name.lower().rstrip(".")
    return lowered if lowered and _NAME.match(lowered) else None


@dataclass(frozen=True)
class Seen:
    """A flow between addresses `a` and `b` (one of them a peer's) of class `app` that
    named server `name`."""

    a: str
    b: str
    app: App
    name: str


def encode(seen: Seen) -> bytes:
    return json.dumps([seen.a, seen.b, seen.app, seen.name], separators=(",", ":")).encode()


def decode(data: bytes) -> Seen | None:
    """The message's flow, or None for anything that is not one."""
    try:
        a, b, app, name = json.loads(data)
    except (ValueError, TypeError):
        return None
    return checked(a, b, app, name)


def checked(a: object, b: object, app: object, name: object) -> Seen | None:
    """A flow from values another process sent (the queue reader, a node's agent), or
    None when they are not one."""
    if not (isinstance(a, str) and isinstance(b, str) and len(a) <= 45 and len(b) <= 45):
        return None
    kept = clean(name) if isinstance(name, str) else None
    if app not in NAMED or kept is None:
        return None
    return Seen(a, b, app, kept)

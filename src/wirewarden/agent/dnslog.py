"""The node resolver's query log as report rows (the control plane stores them in its
query log, naming the peer from its own database)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import JsonValue

from wirewarden.domain import dnswire


def rows_of(records: Sequence[Sequence[Any]]) -> list[dict[str, JsonValue]]:
    """Resolver records (dns/resolver.py's Record, the count last) as `dns_log` rows."""
    rows: list[dict[str, JsonValue]] = []
    names: dict[bytes, str] = {}
    for (
        at,
        peer_id,
        _peer,
        client,
        policy,
        name,
        qtype,
        status,
        reason,
        rcode,
        up,
        ms,
        count,
    ) in records:
        if not isinstance(name, str):
            name = names.get(name) or names.setdefault(name, dnswire.wire_to_text(name))
        rows.append(
            {
                "at": at,
                "peer_id": peer_id,
                "client": client,
                "policy": policy,
                "name": name,
                "qtype": qtype,
                "status": status,
                "reason": reason,
                "rcode": rcode,
                "upstream": up,
                "latency_ms": ms,
                "count": count,
            }
        )
    return rows

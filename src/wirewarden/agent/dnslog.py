"""The node resolver's query log as report rows (the control plane stores them in its
query log, naming the peer from its own database)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import JsonValue

from wirewarden.dns.resolver import RECORD_FIELDS
from wirewarden.domain import dnswire


def rows_of(records: Sequence[Sequence[Any]]) -> list[dict[str, JsonValue]]:
    """Resolver records (dns/resolver.py's Record) as `dns_log` rows."""
    rows: list[dict[str, JsonValue]] = []
    names: dict[bytes, str] = {}
    for record in records:
        row: dict[str, Any] = dict(zip(RECORD_FIELDS, record, strict=True))
        del row["peer"]  # the control plane names the peer from its own database
        name = row["name"]
        if not isinstance(name, str):
            row["name"] = names.get(name) or names.setdefault(name, dnswire.wire_to_text(name))
        rows.append(row)
    return rows

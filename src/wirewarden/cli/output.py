"""Showing results: Rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

# emoji off: a fingerprint holding ":CD:" or a peer named ":cd:" must print as
# itself, never as a picture.
console = Console(emoji=False)
errors = Console(stderr=True, emoji=False)


def emit_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    print(json.dumps(value, indent=2))


def table(rows: Sequence[BaseModel], columns: Sequence[str], title: str | None = None) -> None:
    view = Table(*columns, title=title)
    for row in rows:
        data = row.model_dump()
        view.add_row(*(_cell(data.get(c)) for c in columns))
    console.print(view)


def listing(
    rows: Sequence[BaseModel], columns: Sequence[str], as_json: bool, title: str | None = None
) -> None:
    """What a `list` command prints: the rows as JSON, or the table of these columns."""
    if as_json:
        emit_json(rows)
    else:
        table(rows, columns, title)


def record(item: BaseModel, as_json: bool) -> None:
    if as_json:
        emit_json(item)
        return
    view = Table.grid(padding=(0, 2))
    for key, value in item.model_dump().items():
        view.add_row(f"[bold]{key}[/]", _cell(value))
    console.print(view)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)

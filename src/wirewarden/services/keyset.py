"""Paging by key: a page starts after the last row of the one before, found through the
ordering column's index, so a page deep in 10,000 rows costs what the first one does (an
OFFSET walks and throws away every row before it).

A cursor is opaque to clients: the last row's sort key, base64url-encoded so any name
(and later any key) travels safely in a query string.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from wirewarden.services.errors import Invalid

MAX_KEY = 256  # longer than any name the schema allows


def encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode(cursor: str, field: str = "after") -> str:
    """The sort key in a cursor; a 422 naming `field` for anything this module did not make."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        key = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise Invalid("not a cursor this server gave out", field) from None
    if not key or len(key) > MAX_KEY or encode(key) != cursor:
        raise Invalid("not a cursor this server gave out", field)
    return key


def page(
    db: Session,
    query: Select[Any],
    column: InstrumentedAttribute[str],
    limit: int,
    offset: int = 0,
    after: str | None = None,
) -> tuple[int, list[Any], str | None]:
    """The total count of a filtered query, one page of it ordered by a unique column
    (rows after the cursor's key, then `offset` more skipped) and the cursor of the next
    page (None on the last)."""
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    if after:  # an empty cursor is none: the first page
        query = query.where(column > decode(after))
    # One row more than asked says whether another page follows, without a second count.
    rows = list(db.scalars(query.order_by(column).limit(limit + 1).offset(offset)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    following = encode(getattr(rows[-1], column.key)) if more and rows else None
    return total, rows, following

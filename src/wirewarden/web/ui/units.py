"""The units people read and type on the dashboard: speeds in Mbit/s and data in decimal
GB, as ISPs sell them. The API and the database keep kbit/s and bytes."""

from __future__ import annotations

KBIT_PER_MBIT = 1000
GB = 1_000_000_000
_SIZES = ("B", "kB", "MB", "GB", "TB", "PB")


def human_bytes(value: int | None) -> str:
    """A byte count in decimal units (1 GB = 1,000,000,000 bytes), the caps' units."""
    amount = float(value or 0)
    for unit in _SIZES:
        if amount < 1000 or unit == _SIZES[-1]:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    raise AssertionError("unreachable")


def speed(kbit: int | None) -> str:
    """A rate limit as people read it: '10 Mbit/s', '0.5 Mbit/s'; 'none' when unlimited."""
    return f"{kbit / KBIT_PER_MBIT:g} Mbit/s" if kbit else "none"


def mbit_text(kbit: int | None) -> str:
    """A rate limit as a form's field value (Mbit/s), empty when unlimited."""
    return f"{kbit / KBIT_PER_MBIT:g}" if kbit else ""


def gb_text(value: int | None) -> str:
    """A cap as a form's field value (GB), empty when there is none."""
    return f"{value / GB:g}" if value else ""


def _number(text: str) -> float:
    # A decimal comma is how half of Europe types 2,5.
    value = float(text.strip().replace(",", "."))
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def parse_mbit(text: str) -> int:
    """Mbit/s as typed into kbit/s; ValueError with a message a person understands."""
    try:
        value = _number(text)
    except ValueError:
        raise ValueError("Enter a speed in Mbit/s, like 10 or 2.5.") from None
    if value < 0:
        raise ValueError("A speed cannot be negative.")
    return round(value * KBIT_PER_MBIT)


def parse_gb(text: str) -> int:
    """GB as typed into bytes; ValueError with a message a person understands."""
    try:
        value = _number(text)
    except ValueError:
        raise ValueError("Enter an amount in GB, like 50 or 2.5.") from None
    if value < 0:
        raise ValueError("A data cap cannot be negative.")
    return round(value * GB)

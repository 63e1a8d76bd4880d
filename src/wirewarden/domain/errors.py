"""The error the data plane raises, named where every layer may see it.

Drivers (dataplane/) raise it, through their own subclass that carries the tool's argv and
stderr; services and the dashboard catch it without importing a driver, which keeps them
above the adapters (DESIGN.md §2, the contracts in pyproject.toml).
"""

from __future__ import annotations


class DataplaneError(RuntimeError):
    """The data plane refused a change or did not answer (a tool failed, timed out, is
    missing; a device is gone)."""

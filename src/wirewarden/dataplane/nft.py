"""Our nftables table, applied whole and atomically with `nft -f`."""

from __future__ import annotations

import re

from wirewarden.dataplane.run import CommandError, run
from wirewarden.domain.render import TABLE

_DIGEST = re.compile(r'comment "wirewarden ([0-9a-f]+)"')


def table_digest() -> str | None:
    """The digest our last apply left in the table comment, or None when the table is gone."""
    try:
        out = run(["nft", "list", "table", "inet", TABLE]).stdout
    except CommandError:
        return None
    match = _DIGEST.search(out)
    return match.group(1) if match else ""


def apply_ruleset(script: str) -> None:
    run(["nft", "-f", "-"], stdin=script)


def delete_table() -> None:
    run(["nft", "delete", "table", "inet", TABLE], check=False)

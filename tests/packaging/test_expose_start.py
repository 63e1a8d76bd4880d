"""`wirewarden expose` on a peer loads none of the server: no database library, no
drivers, no bootstrap (they cost most of a second before the first mapping)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
sys.argv = ["wirewarden", "expose", "--help"]
from wirewarden.__main__ import main
try:
    main()
except SystemExit:
    pass
loaded = [m for m in ("sqlalchemy", "wirewarden.bootstrap", "wirewarden.dataplane.linux",
                      "wirewarden.cli.main") if m in sys.modules]
print(json.dumps(loaded))
"""


def test_expose_starts_without_the_server_s_modules() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stdout.strip().splitlines()
    assert "expose" in done.stdout and "LOCAL_HOST:LOCAL_PORT" in done.stdout
    assert json.loads(lines[-1]) == []


def test_the_full_cli_still_has_expose_and_everything_else() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wirewarden", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for command in ("expose", "agent", "serve", "node"):
        assert command in done.stdout

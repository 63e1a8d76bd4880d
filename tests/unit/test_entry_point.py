"""The console script's module loads nothing of the CLI until it runs."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_entry_module_leaves_the_cli_unloaded() -> None:
    # What a process spawned by serve does when it re-runs the script as its main module.
    code = "import sys, wirewarden.__main__; print('wirewarden.cli.main' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""The console script's module loads nothing of the CLI until it runs."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_entry_module_leaves_the_cli_unloaded() -> None:
    # What a process spawned by serve does when it re-runs the script as its main module.
    code = "import sys, wirewarden.__main__; print('wirewarden.cli.main' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_command_runs_with_the_collector_on_and_the_cli_set_aside() -> None:
    # The CLI's modules are imported with the collector off and then frozen; a command that
    # left it off would grow without bound (serve runs through this same entry point).
    code = (
        "import gc, sys, wirewarden.cli.main as cli\n"
        "seen = []\n"
        "cli.main = lambda: seen.append((gc.isenabled(), gc.get_freeze_count()))\n"
        "sys.argv = ['wirewarden', 'interface', 'list']\n"
        "from wirewarden.__main__ import main\n"
        "main()\n"
        "print(seen[0][0], seen[0][1] > 10000)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True True"

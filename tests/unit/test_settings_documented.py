"""Every setting has its own row in the README's settings table, by its variable name;
every benchmark its row in bench/README.md."""

from __future__ import annotations

import re
from pathlib import Path

from wirewarden.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_has_a_row_in_the_readme_table() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `(WIREWARDEN_[A-Z0-9_]+)` \|", section, re.MULTILINE))
    wanted = {f"WIREWARDEN_{name.upper()}" for name in Settings.model_fields}
    assert not wanted - rows, f"settings without a README row: {sorted(wanted - rows)}"
    assert not rows - wanted, f"README rows of no setting: {sorted(rows - wanted)}"


def test_every_benchmark_has_a_row_in_the_bench_readme() -> None:
    """A benchmark nobody can find is never run again: each script of bench/ has a row."""
    text = (ROOT / "bench" / "README.md").read_text()
    rows = set(re.findall(r"^\| `([a-z0-9_]+\.py)` \|", text, re.MULTILINE))
    helpers = {"netns_run.py"}  # imported by the benchmarks, not run
    scripts = {p.name for p in (ROOT / "bench").glob("*.py")} - helpers
    assert not scripts - rows, f"benchmarks without a row: {sorted(scripts - rows)}"
    assert not rows - scripts, f"rows of no benchmark: {sorted(rows - scripts)}"

"""Every setting is documented: its WIREWARDEN_ variable appears in the README or docs/."""

from __future__ import annotations

from pathlib import Path

from wirewarden.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "README.md").read_text()
    text += "".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))
    missing = [n for n in Settings.model_fields if f"WIREWARDEN_{n.upper()}" not in text]
    assert missing == [], f"undocumented settings: {missing}"

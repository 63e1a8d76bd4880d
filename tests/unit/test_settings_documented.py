"""Every setting is documented by its variable name (README's table or a docs/ page)."""

from __future__ import annotations

from pathlib import Path

from wirewarden.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = "\n".join(page.read_text() for page in pages)
    missing = [
        f"WIREWARDEN_{name.upper()}"
        for name in Settings.model_fields
        if f"WIREWARDEN_{name.upper()}" not in text
    ]
    assert not missing, f"undocumented settings: {missing}"

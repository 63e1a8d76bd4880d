"""What the CLI prints is the text itself: no emoji codes turned into pictures."""

from __future__ import annotations

import pytest

from wirewarden.cli import output


def test_a_fingerprint_with_emoji_codes_prints_as_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # ":CD:" inside a SHA-256 fingerprint once printed as a compact disc, so the
    # fingerprint a user compares with the browser's was wrong.
    fingerprint = "79:D4:BC:21:89:CD:34:17:4A:E7:D7:39:75:7F"
    output.console.print(fingerprint, soft_wrap=True)
    output.errors.print(":cd: :smile:")
    captured = capsys.readouterr()
    assert fingerprint in captured.out
    assert ":cd: :smile:" in captured.err

"""The dashboard's small pure helpers: formatting, redirects, form errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wirewarden.services.schemas import PeerCreate
from wirewarden.web.ui import forms
from wirewarden.web.ui.signin import safe_next
from wirewarden.web.ui.templating import ago
from wirewarden.web.ui.units import human_bytes


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (5 * 10**9, "5.0 GB"), (None, "0 B")],
)
def test_human_bytes(value: int | None, text: str) -> None:
    assert human_bytes(value) == text


def test_ago() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert ago(None, now) == "never"
    assert ago(now - timedelta(seconds=2), now) == "just now"
    assert ago(now - timedelta(seconds=42), now) == "42 s ago"
    assert ago(now - timedelta(minutes=3, seconds=5), now) == "3 min ago"
    assert ago(now - timedelta(hours=5), now) == "5 h ago"
    assert ago(now - timedelta(days=2, hours=1), now) == "2 d ago"


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/interfaces/wg0?page=2", "/interfaces/wg0?page=2"),
        (None, "/"),
        ("", "/"),
        ("https://evil.test/", "/"),
        ("//evil.test/x", "/"),
        ("/\\evil.test", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_sign_in_only_returns_to_this_site(target: str | None, safe: str) -> None:
    assert safe_next(target) == safe


def test_schema_errors_are_named_per_field() -> None:
    errors: forms.Errors = {}
    made = forms.build(
        lambda: PeerCreate.model_validate({"name": "Bad Name", "allowed_ips": "1.2.3.4/40"}),
        errors,
    )
    assert made is None
    assert set(errors) == {"name", "allowed_ips"}
    assert not errors["allowed_ips"].startswith("Value error")

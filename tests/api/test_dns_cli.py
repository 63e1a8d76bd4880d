"""`wirewarden dns ...` on a local data dir, as a person types it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wirewarden.cli.dns import dns_app
from wirewarden.cli.main import app
from wirewarden.dataplane.fake import FakeDataplane


@pytest.fixture
def run(cli_env: FakeDataplane) -> CliRunner:
    # cli_env: the CLI's data plane is the in-memory fake, the test must not touch the host's.
    if not any(group.name == "dns" for group in app.registered_groups):
        app.add_typer(dns_app, name="dns")
    return CliRunner()


def test_policy_lists_and_assignment(run: CliRunner, tmp_path: Path) -> None:
    # Local lists are read from <data dir>/dns/local-lists/ only, by name.
    local = tmp_path / "data" / "dns" / "local-lists"
    local.mkdir(parents=True)
    (local / "list.txt").write_text("0.0.0.0 ads.example\n||tracker.example^\nnot a rule\n")
    made = run.invoke(
        app,
        [
            "dns",
            "policy",
            "set",
            "kids",
            "-b",
            "list.txt",
            "--deny",
            "*.games.example",
            "--block-answer",
            "null-ip",
            "--json",
        ],
    )
    assert made.exit_code == 0, made.output
    shown = json.loads(made.output)
    assert shown["deny"] == ["*.games.example"] and shown["lists"][0]["entries"] == 2

    refreshed = run.invoke(app, ["dns", "lists", "refresh", "--json"])
    assert refreshed.exit_code == 0, refreshed.output
    assert '"junk": 1' in refreshed.output

    bad = run.invoke(app, ["dns", "policy", "set", "bad", "--deny", "no spaces.example"])
    assert bad.exit_code == 2 and "not a domain name" in bad.output

    assert run.invoke(app, ["interface", "add", "wg0", "--address", "10.8.0.1/24"]).exit_code == 0
    assert run.invoke(app, ["peer", "add", "laptop", "-i", "wg0"]).exit_code == 0
    assigned = run.invoke(app, ["dns", "assign", "laptop", "-i", "wg0", "kids"])
    assert assigned.exit_code == 0 and "dns_policy=kids" in assigned.output
    unknown = run.invoke(app, ["dns", "assign", "laptop", "-i", "wg0", "nope"])
    assert unknown.exit_code == 2 and "no DNS policy" in unknown.output
    assert run.invoke(app, ["dns", "policy", "rm", "kids"]).exit_code == 1  # in use
    listed = run.invoke(app, ["dns", "policy", "list", "--json"])
    assert [p["name"] for p in json.loads(listed.output)] == ["default", "kids"]
    stats = run.invoke(app, ["dns", "stats", "--json"])
    assert stats.exit_code == 0 and json.loads(stats.output)["queries"] == 0

"""`wirewarden node`: the join token printed once, the table, drain, a clear refusal."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from wirewarden.cli.main import app
from wirewarden.cli.nodes import node_app
from wirewarden.dataplane.fake import FakeDataplane


def run(*args: str) -> tuple[int, str]:
    if not any(group.name == "node" for group in app.registered_groups):
        app.add_typer(node_app, name="node")  # as main() does
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_node_commands(cli_env: FakeDataplane, database_url: str | None) -> None:
    if database_url is None:
        code, out = run("node", "add", "fra1", "--region", "eu")
        assert code == 1 and "wirewarden db copy --to postgresql" in out
        return
    code, out = run("node", "add", "fra1", "--region", "eu", "--capacity", "50", "--country", "de")
    assert code == 0, out
    token = next(w for w in out.split() if w.startswith("wwj_"))
    assert len(token) > 40 and "wirewarden agent --server" in out
    code, out = run("node", "list")
    assert code == 0 and "Nodes" in out and token not in out
    code, out = run("node", "list", "--json")
    listed = {n["name"]: n for n in json.loads(out)}
    assert listed["fra1"]["status"] == "pending" and listed["fra1"]["capacity"] == 50
    code, out = run("node", "set", "fra1", "--drain", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["drain"] is True and shown["country"] == "DE"
    code, out = run("node", "token", "fra1", "--hours", "2")
    assert code == 0 and "wwj_" in out and token not in out
    code, out = run("node", "add", "bad name")
    assert code != 0 and "name" in out
    code, out = run("node", "rm", "fra1", "--yes")
    assert code == 0
    code, out = run("node", "show", "fra1")
    assert code == 1 and "not found" in out


@pytest.mark.parametrize("args", [["node", "set", "local", "--capacity", "0"]])
def test_bad_values_name_the_field(cli_env: FakeDataplane, args: list[str]) -> None:
    code, out = run(*args)
    assert code != 0 and "capacity" in out

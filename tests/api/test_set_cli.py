"""`wirewarden interface set` and `peer set` on a local data dir, as a person types them:
the same schemas (field named on bad input, exit 2) and services as the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from wirewarden import bootstrap
from wirewarden.cli import main as cli_main
from wirewarden.cli.main import app
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("WIREWARDEN_DATA_DIR", str(tmp_path / "data"))
    fake = FakeDataplane()  # the test must not touch the host's data plane

    def build(settings: Settings, **kwargs: Any) -> bootstrap.Container:
        return bootstrap.build(settings, dataplane=fake, **kwargs)

    monkeypatch.setattr(cli_main, "build", build)
    runner = CliRunner()
    made = runner.invoke(app, ["interface", "add", "wg0", "--address", "10.8.0.1/24"])
    assert made.exit_code == 0, made.output
    assert runner.invoke(app, ["peer", "add", "laptop", "-i", "wg0"]).exit_code == 0
    return runner


def _json(run: CliRunner, *args: str) -> dict[str, object]:
    result = run.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    found: dict[str, object] = json.loads(result.output)
    return found


def test_interface_set_changes_only_what_is_given(run: CliRunner) -> None:
    out = _json(run, "interface", "set", "wg0", "--endpoint", "vpn.example.org:51999")
    assert out["endpoint"] == "vpn.example.org:51999" and out["mtu"] == 1420
    out = _json(run, "interface", "set", "wg0", "--dns", "10.8.0.1", "--port", "51830")
    assert (out["dns"], out["listen_port"]) == ("10.8.0.1", 51830)
    assert out["endpoint"] == "vpn.example.org:51999"  # untouched
    out = _json(run, "interface", "set", "wg0", "--mtu", "1380", "--endpoint", "")
    assert out["mtu"] == 1380 and out["endpoint"] is None
    shown = _json(run, "interface", "show", "wg0")
    assert (shown["listen_port"], shown["mtu"], shown["dns"]) == (51830, 1380, "10.8.0.1")


def test_interface_set_names_the_bad_field(run: CliRunner) -> None:
    result = run.invoke(app, ["interface", "set", "wg0", "--mtu", "100"])
    assert result.exit_code == 2 and "mtu" in result.output
    result = run.invoke(app, ["interface", "set", "wg0", "--dns", "not-an-ip"])
    assert result.exit_code == 2 and "dns" in result.output
    result = run.invoke(app, ["interface", "set", "nope", "--mtu", "1400"])
    assert result.exit_code == 1 and "not found" in result.output


def test_peer_set_policy_fields(run: CliRunner) -> None:
    out = _json(
        run,
        "peer", "set", "laptop", "-i", "wg0",
        "--rate-down-kbit", "20000", "--rate-up-kbit", "5000",
        "--data-cap-bytes", "50000000000", "--acl", "internet-only", "--mesh",
    )  # fmt: skip
    assert (out["rate_down_kbit"], out["rate_up_kbit"]) == (20000, 5000)
    assert (out["data_cap_bytes"], out["acl"], out["mesh"]) == (50000000000, "internet-only", True)
    out = _json(run, "peer", "set", "laptop", "-i", "wg0", "--rate-down-kbit", "none", "--no-mesh")
    assert (out["rate_down_kbit"], out["rate_up_kbit"], out["mesh"]) == (None, 5000, False)
    shown = _json(run, "peer", "show", "laptop", "-i", "wg0")
    assert shown["acl"] == "internet-only" and shown["data_cap_bytes"] == 50000000000


def test_peer_set_refuses_what_the_api_refuses(run: CliRunner) -> None:
    result = run.invoke(app, ["peer", "set", "laptop", "-i", "wg0", "--rate-down-kbit", "1"])
    assert result.exit_code == 2 and "rate_down_kbit" in result.output
    result = run.invoke(app, ["peer", "set", "laptop", "-i", "wg0", "--acl", "no-such-profile"])
    assert result.exit_code != 0 and "acl" in result.output
    result = run.invoke(app, ["peer", "set", "laptop", "-i", "wg0", "--dns-policy", "ghost"])
    assert result.exit_code == 2 and "dns_policy" in result.output
    result = run.invoke(app, ["peer", "set", "laptop", "-i", "wg0"])
    assert result.exit_code == 2 and "nothing to change" in result.output


def test_peer_list_pages_by_key_with_the_cursor_it_prints(run: CliRunner) -> None:
    for name in ("alpha", "bravo", "charlie", "delta"):
        assert run.invoke(app, ["peer", "add", name, "-i", "wg0"]).exit_code == 0
    shown = run.invoke(app, ["peer", "list", "-i", "wg0", "--limit", "2"])
    assert shown.exit_code == 0, shown.output
    assert "alpha" in shown.output and "bravo" in shown.output and "delta" not in shown.output
    cursor = shown.output.split("next page: --after ", 1)[1].split()[0]
    after = _json(run, "peer", "list", "-i", "wg0", "--limit", "2", "--after", cursor)
    names = [p["name"] for p in after["items"]]  # type: ignore[attr-defined]
    assert names == ["charlie", "delta"]
    last = _json(run, "peer", "list", "-i", "wg0", "--after", str(after["next"]))
    assert [p["name"] for p in last["items"]] == ["laptop"]  # type: ignore[attr-defined]
    assert last["next"] is None


def test_peer_set_blocks_classes_and_none_clears_them(run: CliRunner) -> None:
    out = _json(run, "peer", "set", "laptop", "-i", "wg0", "--block-apps", "ssh, bittorrent")
    assert out["block_apps"] == ["bittorrent", "ssh"]
    bad = run.invoke(app, ["peer", "set", "laptop", "-i", "wg0", "--block-apps", "netflix"])
    assert bad.exit_code == 2 and "block_apps" in bad.output
    out = _json(run, "peer", "set", "laptop", "-i", "wg0", "--block-apps", "none")
    assert out["block_apps"] == []

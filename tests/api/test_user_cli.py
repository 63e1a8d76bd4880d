"""The `wirewarden user` and `token` commands on a real data dir, and the first admin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.api.conftest import build_fast
from wirewarden.cli.main import app
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.services.context import SYSTEM
from wirewarden.services.errors import Unauthorized

PASSWORD = "a long enough passphrase\n"


@pytest.fixture
def data_dir(tmp_path: Path, cli_env: FakeDataplane) -> Path:
    return tmp_path / "data"


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def test_user_add_with_password_on_stdin_then_list(data_dir: Path) -> None:
    code, _ = run("user", "add", "alice", "--role", "member", "--password-stdin", stdin=PASSWORD)
    assert code == 0
    code, _ = run("user", "add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    assert code == 0
    code, out = run("user", "list", "--json")
    users = {u["name"]: u for u in json.loads(out)}
    assert users["alice"]["role"] == "member" and users["alice"]["device_limit"] == 5
    assert users["root"]["role"] == "admin" and users["root"]["tenant"] is None


def test_user_add_refuses_bad_input(data_dir: Path) -> None:
    code, out = run("user", "add", "alice", "--password-stdin", stdin="short\n")
    assert code == 2 and "password" in out
    code, out = run("user", "add", "alice", "--role", "boss", "--password-stdin", stdin=PASSWORD)
    assert code == 2 and "role" in out
    code, out = run("user", "add", "Bad Name", "--password-stdin", stdin=PASSWORD)
    assert code == 2 and "name" in out


def test_passwd_disable_enable_reset_rm(data_dir: Path) -> None:
    run("user", "add", "alice", "--password-stdin", stdin=PASSWORD)
    assert run("user", "passwd", "alice", "--password-stdin", stdin="another long one\n")[0] == 0
    assert run("user", "disable", "alice")[0] == 0
    assert json.loads(run("user", "list", "--json")[1])[0]["disabled"] is True
    assert run("user", "enable", "alice")[0] == 0
    assert run("user", "reset-2fa", "alice")[0] == 0
    assert run("user", "rm", "alice", "--yes")[0] == 0
    code, out = run("user", "passwd", "alice", "--password-stdin", stdin=PASSWORD)
    assert code == 1 and "not found" in out
    built = build_fast(Settings(data_dir=data_dir), dataplane=FakeDataplane())
    try:
        with pytest.raises(Unauthorized):  # deleted: refused like any unknown name
            built.auth.login("alice", "another long one", "test")
    finally:
        built.engine.dispose()


def test_token_create_is_owned_by_the_first_admin(data_dir: Path) -> None:
    for args in (("root", "--role", "admin"), ("alice",)):
        code, out = run("user", "add", *args, "--password-stdin", stdin=PASSWORD)
        assert code == 0, out
    code, out = run("token", "create", "--name", "ci")
    token = out.strip().splitlines()[-1]
    assert code == 0 and token.startswith("ww_")
    code, out = run("token", "create", "--name", "mine", "--user", "alice", "--scope", "read")
    tokens = {t["name"]: t for t in json.loads(run("token", "list", "--json")[1])}
    assert tokens["ci"]["user"] == "root" and tokens["mine"]["user"] == "alice"
    assert tokens["mine"]["scopes"] == ["read"]


def test_first_start_makes_one_admin(tmp_path: Path, database_url: str | None) -> None:
    built = build_fast(
        Settings(data_dir=tmp_path / "d", database_url=database_url), dataplane=FakeDataplane()
    )
    try:
        made = built.users.ensure_first_admin(None, SYSTEM)
        assert made is not None and made[0] == "admin" and len(made[1]) >= 20
        assert built.users.ensure_first_admin(None, SYSTEM) is None  # only once
        result = built.auth.login("admin", made[1], "test")
        assert result.status == "ok" and result.role == "admin"
    finally:
        built.engine.dispose()


def test_first_start_takes_the_password_from_the_setting(
    tmp_path: Path, database_url: str | None
) -> None:
    built = build_fast(
        Settings(data_dir=tmp_path / "d", database_url=database_url), dataplane=FakeDataplane()
    )
    try:
        assert built.users.ensure_first_admin("chosen by the operator", SYSTEM) == (
            "admin",
            "chosen by the operator",
        )
        assert built.auth.login("admin", "chosen by the operator", "test").status == "ok"
    finally:
        built.engine.dispose()

"""The local Unbound upstream: the `unbound` entry of WIREWARDEN_DNS_UPSTREAMS, the
rendered unbound.conf (checked by unbound-checkconf itself), the trust anchor choice, and
the clear error when the binary is missing."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wirewarden import bootstrap
from wirewarden.cli.main import app
from wirewarden.config import Settings, SettingsError
from wirewarden.dataplane import unbound
from wirewarden.dataplane.unbound import LocalUnbound, UnboundOptions, find_binary
from wirewarden.dns.lists import ListStore
from wirewarden.dns.upstream import UNBOUND, parse_upstream, parse_upstreams
from wirewarden.domain.unbound import UnboundConf, render_unbound_conf
from wirewarden.store.dns import DnsStore

CHECKCONF = find_binary("unbound-checkconf")
needs_checkconf = pytest.mark.skipif(CHECKCONF is None, reason="unbound-checkconf not installed")

# ------------------------------------------------------------------ parsing


def test_unbound_entries_parse_to_a_loopback_plain_upstream() -> None:
    local = parse_upstream("unbound")
    assert (local.scheme, local.host, local.port) == (UNBOUND, "127.0.0.1", 5335)
    assert local.label == "unbound://127.0.0.1:5335"
    assert parse_upstream(" unbound://127.0.0.1:5400 ").port == 5400
    assert parse_upstream("unbound://127.0.0.2").port == 5335
    assert parse_upstream("unbound://[::1]:5400").label == "unbound://[::1]:5400"


def test_unbound_mixes_with_others_in_order() -> None:
    labels = [
        u.label for u in parse_upstreams("tls://9.9.9.9#dns.quad9.net, unbound,udp://10.0.0.1")
    ]
    assert labels == [
        "tls://9.9.9.9:853#dns.quad9.net",
        "unbound://127.0.0.1:5335",
        "udp://10.0.0.1:53",
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("unbound://192.0.2.1:5335", "loopback"),
        ("unbound://127.0.0.1:5335#name", "#name"),
        ("unbound://localhost:5335", "IP address"),
        ("unbound,unbound://127.0.0.1:5400", "one local Unbound"),
        ("unbond", "scheme"),
    ],
)
def test_bad_unbound_entries_are_refused(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_upstreams(text)


# ------------------------------------------------------------------ rendering


def test_rendered_config_is_loopback_only_and_never_debians(tmp_path: Path) -> None:
    text = render_unbound_conf(UnboundConf(str(tmp_path)))
    for line in (
        f'directory: "{tmp_path}"',
        f'pidfile: "{tmp_path}/unbound.pid"',
        'chroot: ""',
        'username: ""',
        "do-daemonize: no",
        "use-syslog: no",
        "interface: 127.0.0.1",
        "port: 5335",
        "access-control: 0.0.0.0/0 refuse",
        "access-control: 127.0.0.0/8 allow",
        "num-threads: 1",
        "qname-minimisation: yes",
        "prefetch: yes",
        "hide-identity: yes",
        "hide-version: yes",
        "do-not-query-localhost: yes",  # only a test turns it off
        'module-config: "iterator"',
        "control-enable: no",
    ):
        assert f"    {line}\n" in text, line
    assert "/etc/unbound" not in text and "root-hints" not in text


def test_trust_anchor_turns_validation_on_and_hints_are_used(tmp_path: Path) -> None:
    conf = UnboundConf(
        str(tmp_path), "::1", 5400, root_hints="/h/root.hints", trust_anchor=f"{tmp_path}/root.key"
    )
    text = render_unbound_conf(conf)
    assert 'module-config: "validator iterator"' in text
    assert f'auto-trust-anchor-file: "{tmp_path}/root.key"' in text
    assert 'root-hints: "/h/root.hints"' in text
    assert "interface: ::1\n" in text and "access-control: ::1/128 allow" in text


@pytest.mark.parametrize(
    "conf",
    [
        UnboundConf("/d", host="0.0.0.0"),
        UnboundConf("/d", port=0),
        UnboundConf('/d"\ninclude: "/etc/x'),
        UnboundConf("/d", root_hints="/h\n"),
    ],
)
def test_values_unbound_cannot_hold_are_refused(conf: UnboundConf) -> None:
    with pytest.raises(ValueError):
        render_unbound_conf(conf)


@needs_checkconf
@pytest.mark.parametrize("dnssec", [False, True])
def test_unbound_checkconf_accepts_what_we_write(tmp_path: Path, dnssec: bool) -> None:
    hints = tmp_path / "root.hints"
    hints.write_text(". 3600000 NS a.root-servers.net.\na.root-servers.net. 3600000 A 127.0.0.9\n")
    key = tmp_path / "shipped.key"
    digest = "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
    key.write_text(f". 172800 IN DS 20326 8 2 {digest}\n")  # the root KSK-2017
    options = UnboundOptions(
        tmp_path / "unbound",
        dnssec=dnssec,
        root_hints=hints,
        root_key=key,
        query_localhost=True,
        anchor_tool=None,
    )
    conf = LocalUnbound(options).write_conf()
    assert (Path(conf.path).stat().st_mode & 0o777) == 0o600
    assert (conf.trust_anchor is not None) == dnssec
    assert CHECKCONF is not None
    checked = subprocess.run([CHECKCONF, conf.path], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_no_trust_anchor_means_iterator_only_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    options = UnboundOptions(
        tmp_path,
        root_hints=tmp_path / "none.hints",
        root_key=tmp_path / "none.key",
        anchor_tool=None,
    )
    with caplog.at_level(logging.WARNING):
        conf = LocalUnbound(options).write_conf()
    assert conf.trust_anchor is None and conf.root_hints is None
    assert "without DNSSEC validation" in caplog.text and "dns-root-data" in caplog.text


def test_our_anchor_copy_is_kept_until_the_shipped_key_is_newer(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped.key"
    shipped.write_text("v1\n")
    options = UnboundOptions(tmp_path / "u", root_key=shipped, anchor_tool=None)
    LocalUnbound(options).write_conf()
    ours = tmp_path / "u" / "root.key"
    assert ours.read_text() == "v1\n"
    ours.write_text("tracked by unbound\n")  # RFC 5011 state Unbound wrote
    LocalUnbound(options).write_conf()
    assert ours.read_text() == "tracked by unbound\n"
    shipped.write_text("v2\n")
    stamp = ours.stat().st_mtime + 10
    os.utime(shipped, (stamp, stamp))
    LocalUnbound(options).write_conf()
    assert ours.read_text() == "v2\n"


# ------------------------------------------------------------------ missing binary


def test_missing_unbound_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unbound, "find_binary", lambda name: None)
    settings = Settings(data_dir=tmp_path, dns_upstreams="udp://10.0.0.1,unbound")
    with pytest.raises(SettingsError, match=r"WIREWARDEN_DNS_UPSTREAMS names unbound://"):
        bootstrap.build_dns(settings, DnsStore(None, "local"), ListStore(tmp_path))  # type: ignore[arg-type]


def test_serve_without_unbound_fails_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unbound, "find_binary", lambda name: None)
    monkeypatch.setenv("WIREWARDEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WIREWARDEN_DNS_UPSTREAMS", "unbound")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "WIREWARDEN_DNS_UPSTREAMS" in result.output and "apt install unbound" in result.output
    assert "Traceback" not in result.output


def test_a_bad_upstream_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREWARDEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WIREWARDEN_DNS_UPSTREAMS", "unbound://192.0.2.1")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2 and "WIREWARDEN_DNS_UPSTREAMS" in result.output

"""Reaching the dashboard: public URL parsing and defaults, capabilities, the self-signed
certificate, and the first admin's password file."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509

from wirewarden.bootstrap import reach
from wirewarden.config import Settings
from wirewarden.dataplane import hostinfo
from wirewarden.domain import urls
from wirewarden.services.first_admin import InitialPassword
from wirewarden.store import selfsigned


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("https://vpn.example.com", "https://vpn.example.com"),
        ("HTTPS://VPN.Example.com:443/", "https://vpn.example.com"),
        ("http://203.0.113.7:8000", "http://203.0.113.7:8000"),
        ("https://[2001:DB8::1]:8443", "https://[2001:db8::1]:8443"),
    ],
)
def test_public_url_is_normalised(given: str, normalised: str) -> None:
    assert urls.public_url(given) == normalised


@pytest.mark.parametrize(
    "bad",
    [
        "vpn.example.com",  # no scheme
        "ftp://vpn.example.com",
        "javascript:alert(1)",
        "https://vpn.example.com/wirewarden",  # a path
        "https://vpn.example.com/../x",
        "https://vpn.example.com//evil.example",
        "https://user:pw@vpn.example.com",
        "https://evil.example\\@vpn.example.com",
        "https://vpn.example.com?next=x",
        "https://vpn.example.com#x",
        "https://vpn.example.com\nX-Injected: 1",
        " https://vpn.example.com",
        "https://vpn.example.com:99999",
        "https://exa mple.com",
        "https://%65vil.example",
        "https://",
    ],
)
def test_public_url_refuses_path_tricks(bad: str) -> None:
    with pytest.raises(ValueError):
        urls.public_url(bad)


def test_settings_refuse_a_bad_public_url_and_half_a_tls_pair(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="path"):
        Settings(public_url="https://vpn.example.com/x")
    with pytest.raises(ValueError, match="TLS_KEY go together"):
        Settings(tls_cert=tmp_path / "c.pem")
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        Settings(trusted_proxies="127.0.0.1, proxy.example")
    with pytest.raises(ValueError):
        Settings(http="0.0.0.0")  # no port


def test_default_public_url_follows_the_listen_address_and_tls(tmp_path: Path) -> None:
    local = reach(Settings())
    assert (local.public_url, local.tls, local.hsts) == ("http://127.0.0.1:8000", "off", False)
    # Beyond loopback without a certificate: a self-signed one, so https, but no HSTS.
    wide = reach(Settings(http="203.0.113.7:8443"))
    assert (wide.public_url, wide.tls, wide.hsts) == (
        "https://203.0.113.7:8443",
        "self-signed",
        False,
    )
    # Every address: the name clients dial (its port is the VPN's, not the dashboard's).
    named = reach(Settings(http="[::]:443", public_host="vpn.example.com:51820"))
    assert named.public_url == "https://vpn.example.com"
    plain = reach(Settings(http="0.0.0.0:80", public_host="vpn.example.com", tls_self_signed=False))
    assert (plain.public_url, plain.tls) == ("http://vpn.example.com", "off")
    # A real certificate: HSTS unless turned off.
    cert = reach(Settings(http="0.0.0.0:443", tls_cert=tmp_path / "c", tls_key=tmp_path / "k"))
    assert (cert.tls, cert.hsts) == ("files", True)
    off = Settings(http="0.0.0.0:443", tls_cert=tmp_path / "c", tls_key=tmp_path / "k", hsts=False)
    assert reach(off).hsts is False
    # Behind a proxy the operator says where people come in.
    proxied = Settings(public_url="https://vpn.example.com/", trusted_proxies="127.0.0.1,::1")
    assert reach(proxied).public_url == "https://vpn.example.com"
    assert reach(proxied).trusted_proxies == ("127.0.0.1", "::1")


def test_cap_net_admin_is_bit_12_of_capeff(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n")
    assert hostinfo.has_net_admin(status)
    status.write_text("Name:\tx\nCapPrm:\t0000000000001000\nCapEff:\t0000000000000fff\n")
    assert not hostinfo.has_net_admin(status)
    assert hostinfo.effective_caps("CapEff:\t000001ffffffffff\n") >> 12 & 1
    assert not hostinfo.has_net_admin(tmp_path / "missing")


def test_self_signed_certificate_is_made_once_and_kept(tmp_path: Path) -> None:
    made = selfsigned.load_or_create(tmp_path / "tls", ["vpn.example.com", "203.0.113.7"])
    assert made.made
    for path in (made.cert, made.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(made.cert.read_bytes())
    assert selfsigned.san_values(cert) == {"vpn.example.com", "203.0.113.7"}
    assert len(made.fingerprint.split(":")) == 32
    again = selfsigned.load_or_create(tmp_path / "tls", ["203.0.113.7"])
    assert not again.made and again.fingerprint == made.fingerprint
    # A name it lacks, or near its end: a new one.
    other = selfsigned.load_or_create(tmp_path / "tls", ["other.example.com"])
    assert other.made and other.fingerprint != made.fingerprint
    late = dt.datetime.now(dt.UTC) + selfsigned.LIFETIME - dt.timedelta(days=1)
    renewed = selfsigned.load_or_create(tmp_path / "tls", ["other.example.com"], now=late)
    assert renewed.made and renewed.fingerprint != other.fingerprint


def test_initial_password_file_goes_at_that_users_first_sign_in(tmp_path: Path) -> None:
    initial = InitialPassword(tmp_path, "admin")
    initial.write("correct horse battery staple")
    assert stat.S_IMODE(initial.path.stat().st_mode) == 0o600
    assert initial.path.read_text() == "correct horse battery staple\n"
    initial.signed_in("alice")
    assert initial.pending()
    initial.signed_in("admin")
    assert not initial.pending()
    initial.signed_in("admin")  # and again: nothing to do

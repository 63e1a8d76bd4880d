"""What `serve` works out and tells the operator before it starts listening: the TLS
certificate to use (a self-signed one made if needed), where to open the dashboard, and the
first admin's password (once, on the terminal only)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from wirewarden.bootstrap import Container, Reach
from wirewarden.cli.output import console
from wirewarden.config import Settings, SettingsError
from wirewarden.domain import urls
from wirewarden.services.first_admin import InitialPassword
from wirewarden.store import selfsigned

TLS_DIR = "tls"


@dataclass(frozen=True)
class Tls:
    cert: Path
    key: Path
    fingerprint: str
    self_signed: bool
    made: bool = False


def prepare_tls(settings: Settings, reach: Reach) -> Tls | None:
    """The certificate and key serve should use, or None for plain HTTP."""
    if reach.tls == "off":
        return None
    if reach.tls == "files":
        assert settings.tls_cert is not None and settings.tls_key is not None
        for name, path in (("TLS_CERT", settings.tls_cert), ("TLS_KEY", settings.tls_key)):
            if not path.is_file():
                raise SettingsError(f"WIREWARDEN_{name}: {path} is not a readable file")
        try:
            print_ = selfsigned.fingerprint(settings.tls_cert.read_bytes())
        except (OSError, ValueError) as exc:
            raise SettingsError(f"WIREWARDEN_TLS_CERT: not a PEM certificate ({exc})") from exc
        return Tls(settings.tls_cert, settings.tls_key, print_, self_signed=False)
    files = selfsigned.load_or_create(settings.data_dir / TLS_DIR, cert_names(settings, reach))
    return Tls(files.cert, files.key, files.fingerprint, self_signed=True, made=files.made)


def cert_names(settings: Settings, reach: Reach) -> list[str]:
    """What the self-signed certificate names: the public URL's host and the address serve
    listens on (unless that is every address)."""
    names = [urls.host_of(reach.public_url)]
    host, _ = settings.host_port
    if not urls.is_unspecified(host):
        names.append(host)
    return names


def announce(settings: Settings, reach: Reach, tls: Tls | None) -> None:
    host, port = settings.host_port
    where = urls.base("https" if tls else "http", host, port)
    console.print(
        f"WireWarden on [bold]{reach.public_url}[/] (listening on {where}; API docs: /docs, "
        f"data: {settings.data_dir})"
    )
    if tls is None:
        return
    if tls.self_signed:
        state = "made now" if tls.made else "kept from an earlier start"
        console.print(
            f"HTTPS with a self-signed certificate ({state}, {tls.cert}). Browsers will warn; "
            "before accepting, check that they show this SHA-256 fingerprint:"
        )
    else:
        console.print(f"HTTPS with {tls.cert}, SHA-256 fingerprint:")
    console.print(f"  [bold]{tls.fingerprint}[/]", soft_wrap=True)


def first_admin(container: Container, made: tuple[str, str] | None, from_setting: bool) -> None:
    """Tell the operator how to sign in the first time. A generated password goes to a
    0600 file until that admin's first sign-in, and to the terminal once when there is one;
    never to stdout or a log, which journald or a container runtime would keep."""
    initial = container.initial_password
    if made is None:
        if initial is not None and initial.pending():
            console.print(f"The first admin's password is still in {initial.path}")
        return
    name, password = made
    if from_setting:
        console.print(f"First admin [bold]{name}[/] created with WIREWARDEN_ADMIN_PASSWORD")
        return
    assert initial is not None
    initial.write(password)
    console.print(
        f"First admin [bold]{name}[/] created; its password is in {initial.path} (0600, "
        "deleted at its first sign-in)"
    )
    show_once(name, password, initial)


def show_once(name: str, password: str, initial: InitialPassword) -> None:
    if not sys.stderr.isatty():
        return
    sys.stderr.write(
        f"\n  First admin: {name}\n  Password:    {password}\n"
        f"  (shown once; also in {initial.path} until {name} signs in. Change it then.)\n\n"
    )
    sys.stderr.flush()

"""A self-signed certificate for HTTPS before the operator has a real one.

Made on the first start that needs it, kept 0600 in the data dir and reused, so the
fingerprint people compared once stays the same; made again only when it no longer names
every host it must (the public URL changed) or is about to expire.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LIFETIME = dt.timedelta(days=3650)
RENEW_BEFORE = dt.timedelta(days=30)
CERT_NAME, KEY_NAME = "self-signed.crt", "self-signed.key"


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path
    fingerprint: str  # SHA-256, colon-separated upper-case hex, as browsers show it
    made: bool = False  # made on this start (else reused)


def fingerprint(cert_pem: bytes) -> str:
    digest = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def load_or_create(
    directory: Path, names: Iterable[str], now: dt.datetime | None = None
) -> CertFiles:
    """The certificate in `directory` if it still fits `names`, else a new one."""
    wanted = sorted(set(names))
    now = now or dt.datetime.now(dt.UTC)
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    if cert_path.exists() and key_path.exists():
        pem = cert_path.read_bytes()
        if _fits(x509.load_pem_x509_certificate(pem), wanted, now):
            return CertFiles(cert_path, key_path, fingerprint(pem))
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = _certificate(key, wanted, now).public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_0600(key_path, key_pem)
    _write_0600(cert_path, pem)
    return CertFiles(cert_path, key_path, fingerprint(pem), made=True)


def san_values(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    dns = san.get_values_for_type(x509.DNSName)
    ips = san.get_values_for_type(x509.IPAddress)
    return {*dns, *(str(ip) for ip in ips)}


def _fits(cert: x509.Certificate, names: list[str], now: dt.datetime) -> bool:
    return set(names) <= san_values(cert) and cert.not_valid_after_utc - RENEW_BEFORE > now


def _certificate(
    key: ec.EllipticCurvePrivateKey, names: list[str], now: dt.datetime
) -> x509.Certificate:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "wirewarden")]
    )
    alt: list[x509.GeneralName] = [_general_name(name) for name in names]
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # some clocks run behind
        .not_valid_after(now + LIFETIME)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _write_0600(path: Path, data: bytes) -> None:
    """Atomically (temp file + rename), never readable by others even for a moment."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)

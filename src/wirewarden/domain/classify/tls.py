"""The server name in a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), read from TLS
records over TCP or from the CRYPTO frames of a QUIC Initial."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HANDSHAKE_RECORD = 0x16
_CLIENT_HELLO = 0x01
_SERVER_NAME = 0x0000
_HOST_NAME = 0x00
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,253}$")


class Truncated(Exception):
    """The bytes end before the structure does: more may come in the next packet."""


class Malformed(Exception):
    """Not the structure asked for, however much more comes."""


@dataclass
class Reader:
    data: bytes
    at: int = 0

    def take(self, count: int) -> bytes:
        end = self.at + count
        if end > len(self.data):
            raise Truncated
        chunk, self.at = self.data[self.at : end], end
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        return self.take(self.number(length_size))

    def skip(self, count: int) -> None:
        self.take(count)


def looks_like_record(stream: bytes) -> bool:
    """The first bytes of a TLS handshake record: type 22, version 3.x."""
    return len(stream) >= 3 and stream[0] == _HANDSHAKE_RECORD and stream[1] == 3


def record_payload(stream: bytes) -> bytes:
    """The handshake bytes carried by the leading records (a ClientHello may span
    several records). Raises Truncated when the first record is incomplete."""
    reader, out = Reader(stream), bytearray()
    while reader.at < len(stream):
        kind, major = reader.number(1), reader.number(1)
        reader.skip(1)
        if kind != _HANDSHAKE_RECORD or major != 3:
            if out:
                break
            raise Malformed
        try:
            out += reader.vector(2)
        except Truncated:
            if out:
                break
            raise
    return bytes(out)


def client_hello_name(handshake: bytes) -> str | None:
    """The SNI host name of the ClientHello that `handshake` starts with; None when it
    names none. Raises Truncated or Malformed."""
    reader = Reader(handshake)
    if reader.number(1) != _CLIENT_HELLO:
        raise Malformed
    length = reader.number(3)
    body = Reader(reader.take(length))
    body.skip(2 + 32)  # legacy_version, random
    body.vector(1)  # legacy_session_id
    body.vector(2)  # cipher_suites
    body.vector(1)  # legacy_compression_methods
    if body.at == len(body.data):
        return None  # no extensions at all (TLS 1.0 style)
    extensions = Reader(body.vector(2))
    while extensions.at < len(extensions.data):
        kind, data = extensions.number(2), extensions.vector(2)
        if kind == _SERVER_NAME:
            return _server_name(data)
    return None


def _server_name(extension: bytes) -> str | None:
    names = Reader(Reader(extension).vector(2))
    while names.at < len(names.data):
        kind, name = names.number(1), names.vector(2)
        if kind == _HOST_NAME:
            text = name.decode("ascii", "replace")
            return text.lower() if _NAME.match(text) else None
    return None

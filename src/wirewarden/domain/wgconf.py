"""Parser for the wg-quick server configs that users import.

Pure: it takes the file's text and returns values; reading the file is the caller's job.
The syntax follows wg(8) and wg-quick(8): section names and keys are case-insensitive,
'#' starts a comment anywhere on a line, and list values are comma-separated and
accumulate across repeated keys.

Where wg is lenient in ways that would make an import ambiguous, this parser is
stricter and says why: a single-valued key given twice is an error (wg silently keeps
the last), as is a peer whose PublicKey is the server's own.

Peer names are not part of the format; tools keep them in comments. We recognise
"# Name = laptop", "# name: laptop", "# friendly_name = laptop", "### Client laptop"
(wireguard-install), "# Client: laptop (<uuid>)" (wg-easy), "### begin laptop ###"
(PiVPN), and, as a fallback, a lone comment directly above "[Peer]" or on its line.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from wirewarden.domain import addresses
from wirewarden.domain.keys import InvalidKeyError, parse_key, public_key_of

T = TypeVar("T")

MAX_PORT = 65535
MAX_KEEPALIVE = 65535
# 576 is the smallest datagram every IPv4 host must accept (RFC 791); anything lower is
# a typo, not a tuning choice. IPv6 needs 1280, but the kernel enforces that per family.
MIN_MTU = 576
MAX_MTU = 65535

# wg-quick hooks and routing knobs: meaningful to wg-quick, but the control plane owns
# routing and firewalling itself, so we accept them and tell the user they were dropped.
IGNORED_KEYS = ("PreUp", "PreDown", "PostUp", "PostDown", "Table", "SaveConfig", "FwMark")
INTERFACE_KEYS = ("PrivateKey", "Address", "ListenPort", "MTU", "DNS")
PEER_KEYS = ("PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive")

_INTERFACE = "Interface"
_PEER = "Peer"
_HEADER = re.compile(r"\[\s*(?P<name>[^\]]*?)\s*\]")
_DIGITS = re.compile(r"[0-9]+")
_IP_LIKE = re.compile(r"[0-9.:a-fA-F]+")
_DECLARED_NAME = re.compile(
    r"(?:(?:friendly[ _-]?)?name\s*[:=]|client(?:\s*[:=]|\s)|begin\s)\s*(?P<name>.+)",
    re.IGNORECASE,
)
_UUID_SUFFIX = re.compile(r"\s*\([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\)$", re.IGNORECASE)
_END_MARKER = re.compile(r"end\s", re.IGNORECASE)


@dataclass(frozen=True)
class WgQuickPeer:
    public_key: str
    preshared_key: str | None
    allowed_ips: tuple[str, ...]  # normalised networks, e.g. "10.8.0.2/32"
    endpoint: str | None  # as written: "host:port" or "[v6]:port"
    persistent_keepalive: int | None  # seconds; None when off (including 0)
    name: str | None


@dataclass(frozen=True)
class WgQuickInterface:
    private_key: str
    addresses: tuple[str, ...]  # normalised interfaces, e.g. "10.8.0.1/24"
    listen_port: int | None
    mtu: int | None  # MIN_MTU..MAX_MTU
    dns: tuple[str, ...]  # nameserver IPs and search domains, as written
    ignored: tuple[str, ...]  # names of IGNORED_KEYS present, for a warning


@dataclass(frozen=True)
class WgQuickConfig:
    interface: WgQuickInterface
    peers: tuple[WgQuickPeer, ...]


class ConfigParseError(ValueError):
    """A config we cannot import, with the line and key to point the user at."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None) -> None:
        self.message = message
        self.line = line
        self.field = field
        where = f"line {line}: " if line is not None else ""
        what = f"{field}: " if field is not None else ""
        super().__init__(where + what + message)


@dataclass(frozen=True)
class _Line:
    number: int
    content: str  # text before any '#', stripped
    comment: str | None  # text after the first '#'


@dataclass(frozen=True)
class _Entry:
    line: int
    key: str  # canonical spelling, e.g. "AllowedIPs"
    value: str


@dataclass
class _Section:
    kind: str
    line: int
    header_comment: str | None
    leading: list[str]  # comment lines directly above the header
    body: list[str] = dataclasses.field(default_factory=list)
    entries: list[_Entry] = dataclasses.field(default_factory=list)


def parse_wg_quick(text: str) -> WgQuickConfig:
    """Parse a wg-quick server config, or raise ConfigParseError naming line and key."""
    sections = _group(_scan(text))
    interface = _build_interface(_the_interface(sections))
    peers = _build_peers([s for s in sections if s.kind == _PEER], interface)
    return WgQuickConfig(interface=interface, peers=peers)


# --- lines and sections ------------------------------------------------------------


def _scan(text: str) -> list[_Line]:
    lines = []
    # split("\n") rather than splitlines(): the latter also breaks on form feeds and
    # Unicode separators, which would make our line numbers disagree with editors.
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        content, hash_mark, comment = raw.rstrip("\r").partition("#")
        lines.append(_Line(number, content.strip(), comment if hash_mark else None))
    return lines


def _group(lines: list[_Line]) -> list[_Section]:
    sections: list[_Section] = []
    pending: list[str] = []  # comments not yet known to lead a header or end a section
    for line in lines:
        if not line.content:
            if line.comment is not None:
                pending.append(line.comment)
            else:
                # A blank line detaches the comments above it from any following header.
                pending = _flush(sections, pending)
            continue
        header = _HEADER.fullmatch(line.content)
        if header:
            kind = _section_kind(header["name"], line.number)
            sections.append(_Section(kind, line.number, line.comment, pending))
            pending = []
            continue
        pending = _flush(sections, pending)
        _add_entry(sections, line)
    _flush(sections, pending)
    return sections


def _flush(sections: list[_Section], pending: list[str]) -> list[str]:
    if sections:
        sections[-1].body.extend(pending)
    return []


def _section_kind(written: str, line: int) -> str:
    for kind in (_INTERFACE, _PEER):
        if written.lower() == kind.lower():
            return kind
    raise ConfigParseError(
        f"unknown section [{written}]; expected [Interface] or [Peer]", line=line
    )


def _add_entry(sections: list[_Section], line: _Line) -> None:
    written, equals, value = line.content.partition("=")
    written = written.strip()
    if not equals or not written:
        raise ConfigParseError(
            f"expected 'Key = Value' or a section header such as [Peer], got {line.content!r}",
            line=line.number,
        )
    if not sections:
        raise ConfigParseError(
            "appears before any section; put it under [Interface] or [Peer]",
            line=line.number,
            field=written,
        )
    section = sections[-1]
    key = _canonical_key(written, section.kind, line.number)
    section.entries.append(_Entry(line.number, key, value.strip()))
    if line.comment is not None:
        section.body.append(line.comment)


def _canonical_key(written: str, kind: str, line: int) -> str:
    allowed = INTERFACE_KEYS + IGNORED_KEYS if kind == _INTERFACE else PEER_KEYS
    for key in allowed:
        if written.lower() == key.lower():
            return key
    raise ConfigParseError(_unknown_key_message(written, kind, allowed), line=line, field=written)


def _unknown_key_message(written: str, kind: str, allowed: tuple[str, ...]) -> str:
    other_kind, other_keys = (
        (_PEER, PEER_KEYS) if kind == _INTERFACE else (_INTERFACE, INTERFACE_KEYS + IGNORED_KEYS)
    )
    if written.lower() in (k.lower() for k in other_keys):
        return f"belongs in [{other_kind}], not [{kind}]"
    by_lower = {k.lower(): k for k in allowed}
    close = difflib.get_close_matches(written.lower(), list(by_lower), n=1)
    if close:
        return f"unknown key in [{kind}]; did you mean {by_lower[close[0]]}?"
    return f"unknown key in [{kind}]; expected one of {', '.join(sorted(allowed))}"


def _the_interface(sections: list[_Section]) -> _Section:
    interfaces = [s for s in sections if s.kind == _INTERFACE]
    if not interfaces:
        raise ConfigParseError("no [Interface] section; a server config needs exactly one")
    if len(interfaces) > 1:
        raise ConfigParseError(
            f"second [Interface] section (the first is on line {interfaces[0].line});"
            " a config has exactly one",
            line=interfaces[1].line,
        )
    return interfaces[0]


# --- looking values up ---------------------------------------------------------------


def _single(section: _Section, key: str) -> _Entry | None:
    found = [e for e in section.entries if e.key == key]
    if len(found) > 1:
        raise ConfigParseError(
            f"given more than once (first on line {found[0].line}); keep only one",
            line=found[1].line,
            field=key,
        )
    if found and not found[0].value:
        raise ConfigParseError("has no value", line=found[0].line, field=key)
    return found[0] if found else None


def _optional(section: _Section, key: str, parse: Callable[[_Entry], T]) -> T | None:
    entry = _single(section, key)
    return None if entry is None else parse(entry)


def _items(section: _Section, key: str) -> Iterator[_Entry]:
    """Each comma-separated item of every line with this key, in file order."""
    for entry in section.entries:
        if entry.key == key:
            for item in entry.value.split(","):
                if item.strip():
                    yield _Entry(entry.line, key, item.strip())


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


# --- building the result --------------------------------------------------------------


def _build_interface(section: _Section) -> WgQuickInterface:
    private_key = _single(section, "PrivateKey")
    if private_key is None:
        raise ConfigParseError(
            "[Interface] section has no PrivateKey", line=section.line, field="PrivateKey"
        )
    return WgQuickInterface(
        private_key=_key(private_key),
        addresses=_unique(_address(e) for e in _items(section, "Address")),
        listen_port=_optional(section, "ListenPort", _listen_port),
        mtu=_optional(section, "MTU", _mtu),
        dns=_unique(_dns(e) for e in _items(section, "DNS")),
        ignored=_unique(e.key for e in section.entries if e.key in IGNORED_KEYS),
    )


def _build_peers(sections: list[_Section], interface: WgQuickInterface) -> tuple[WgQuickPeer, ...]:
    own_key = public_key_of(interface.private_key)
    seen: dict[str, int] = {}
    peers = []
    for section in sections:
        peer = _build_peer(section)
        line = _public_key_line(section)
        if peer.public_key == own_key:
            raise ConfigParseError(
                "this is the server's own public key (derived from [Interface] PrivateKey);"
                " a server cannot be its own peer",
                line=line,
                field="PublicKey",
            )
        if peer.public_key in seen:
            raise ConfigParseError(
                f"duplicate peer: the same key is already used on line {seen[peer.public_key]}",
                line=line,
                field="PublicKey",
            )
        seen[peer.public_key] = line
        peers.append(peer)
    return tuple(peers)


def _public_key_line(section: _Section) -> int:
    return next(e.line for e in section.entries if e.key == "PublicKey")


def _build_peer(section: _Section) -> WgQuickPeer:
    public_key = _single(section, "PublicKey")
    if public_key is None:
        raise ConfigParseError(
            "[Peer] section has no PublicKey", line=section.line, field="PublicKey"
        )
    return WgQuickPeer(
        public_key=_key(public_key),
        preshared_key=_optional(section, "PresharedKey", _key),
        allowed_ips=_unique(_network(e) for e in _items(section, "AllowedIPs")),
        endpoint=_optional(section, "Endpoint", _endpoint),
        persistent_keepalive=_optional(section, "PersistentKeepalive", _keepalive),
        name=_peer_name(section),
    )


# --- value parsers -------------------------------------------------------------------


def _error(entry: _Entry, message: str) -> ConfigParseError:
    return ConfigParseError(message, line=entry.line, field=entry.key)


def _key(entry: _Entry) -> str:
    try:
        return parse_key(entry.value)
    except InvalidKeyError as exc:
        # The value is not echoed: for PrivateKey and PresharedKey it is a secret.
        raise _error(entry, "not a valid WireGuard key (expected 44 characters of base64)") from exc


def _address(entry: _Entry) -> str:
    try:
        return str(addresses.interface(entry.value))
    except addresses.AddressError as exc:
        raise _error(entry, f"{entry.value!r} is not a valid address") from exc


def _network(entry: _Entry) -> str:
    try:
        return str(addresses.network(entry.value, strict=False))
    except addresses.AddressError as exc:
        raise _error(
            entry, f"{entry.value!r} is not a valid address or CIDR range (e.g. 10.8.0.2/32)"
        ) from exc


def _in_range(text: str, low: int, high: int) -> int | None:
    # A regex rather than int(): int() also takes "+5", " 5", "5_0" and non-ASCII digits.
    if _DIGITS.fullmatch(text) and low <= int(text) <= high:
        return int(text)
    return None


def _port(entry: _Entry, text: str) -> int:
    port = _in_range(text, 1, MAX_PORT)
    if port is None:
        raise _error(entry, f"{text!r} is not a valid port (a whole number from 1 to {MAX_PORT})")
    return port


def _listen_port(entry: _Entry) -> int:
    return _port(entry, entry.value)


def _mtu(entry: _Entry) -> int:
    mtu = _in_range(entry.value, MIN_MTU, MAX_MTU)
    if mtu is None:
        raise _error(
            entry,
            f"{entry.value!r} is not a valid MTU (a whole number from {MIN_MTU} to {MAX_MTU})",
        )
    return mtu


def _keepalive(entry: _Entry) -> int | None:
    if entry.value.lower() == "off":
        return None
    seconds = _in_range(entry.value, 0, MAX_KEEPALIVE)
    if seconds is None:
        raise _error(
            entry, f"{entry.value!r} is not valid: give seconds from 0 to {MAX_KEEPALIVE}, or 'off'"
        )
    # wg(8) treats 0 as off; one spelling of "off" keeps callers from checking both.
    return seconds or None


def _endpoint(entry: _Entry) -> str:
    value = entry.value
    if value.startswith("["):
        host, closing, port = value[1:].partition("]:")
        if not closing or not addresses.is_ip(host, version=6):
            raise _error(entry, f"{value!r} is not a valid endpoint; write IPv6 as [address]:port")
    else:
        host, colon, port = value.rpartition(":")
        if not colon or not host:
            raise _error(
                entry, f"{value!r} has no port; write it as host:port, e.g. vpn.example.com:51820"
            )
        if ":" in host:
            raise _error(
                entry, f"{value!r}: an IPv6 endpoint needs brackets, e.g. [2001:db8::1]:51820"
            )
        if not addresses.is_ip(host, version=4) and not addresses.is_hostname(host):
            raise _error(entry, f"{host!r} is not a valid host name or IP address")
    _port(entry, port)
    return value


def _dns(entry: _Entry) -> str:
    value = entry.value
    if addresses.is_ip(value) or addresses.is_hostname(value):
        return value
    # wg-quick treats any non-IP as a search domain; a mistyped IP would silently become one.
    kind = "IP address" if _IP_LIKE.fullmatch(value) else "search domain"
    raise _error(entry, f"{value!r} is not a valid {kind}")


# --- peer names ----------------------------------------------------------------------


def _peer_name(section: _Section) -> str | None:
    header = [section.header_comment] if section.header_comment is not None else []
    for comment in [*section.leading, *header, *section.body]:
        declared = _DECLARED_NAME.fullmatch(_clean(comment))
        if declared:
            return _tidy_name(declared["name"])
    # Only the comment touching the header counts: one further up is likelier prose.
    for comment in [*section.leading[-1:], *header]:
        if _looks_like_lone_name(_clean(comment)):
            return _tidy_name(_clean(comment))
    return None


def _clean(comment: str) -> str:
    return comment.strip(" \t#")


def _tidy_name(name: str) -> str | None:
    name = _UUID_SUFFIX.sub("", name).strip().strip("\"'").strip()
    return name or None


def _looks_like_lone_name(text: str) -> bool:
    # '=' or ':' means a commented-out setting or a note; '[' a commented-out header;
    # "end X" is PiVPN's closing marker for the previous peer.
    return (
        bool(text)
        and not any(c in text for c in "=:")
        and not text.startswith("[")
        and not _END_MARKER.match(text)
    )

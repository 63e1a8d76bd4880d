"""The dashboard's public URL: parsed strictly, since it is printed, put into share links
and named in certificates; or made from where `serve` listens."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from wirewarden.domain import addresses

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}


class UrlError(ValueError):
    pass


def public_url(text: str) -> str:
    """`http(s)://host[:port]` with at most a trailing slash, normalised (lower-case scheme
    and host, no default port, no slash). Anything a link could be bent with (a path, user
    info, query, fragment, backslashes, control characters) is refused: the dashboard lives
    at the root of its host."""
    if not text or text != text.strip() or any(c.isspace() or ord(c) < 32 for c in text):
        raise UrlError("must be a URL like https://vpn.example.com, without spaces")
    if "\\" in text:
        raise UrlError("must not contain a backslash")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UrlError("must start with http:// or https://")
    if "@" in parts.netloc:
        raise UrlError("must not carry a user name or password")
    if parts.path not in ("", "/"):
        raise UrlError("must not have a path: the dashboard is served at the root of its host")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise UrlError("must not have a query or fragment")
    try:
        host, port = addresses.endpoint(parts.netloc)
    except addresses.AddressError as exc:
        raise UrlError(str(exc)) from exc
    return base(scheme, host, port)


def base(scheme: str, host: str, port: int | None) -> str:
    """`scheme://host[:port]`, the port left out where it is the scheme's default."""
    shown = host.lower()
    if addresses.is_ip(shown, version=6):
        shown = f"[{ipaddress.ip_address(shown).compressed}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{shown}"
    return f"{scheme}://{shown}:{port}"


def host_of(url: str) -> str:
    """The host of a URL made by `public_url` or `base`, without brackets."""
    host = urlsplit(url).hostname
    if not host:
        raise UrlError(f"{url!r} has no host")
    return host


def is_unspecified(host: str) -> bool:
    """0.0.0.0 or ::: listening everywhere, an address no one can dial."""
    return addresses.is_ip(host) and ipaddress.ip_address(host).is_unspecified


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    return addresses.is_ip(host) and ipaddress.ip_address(host).is_loopback

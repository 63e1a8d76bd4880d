"""The protocols that say who they are in clear text: HTTP/1 requests and SSH banners."""

from __future__ import annotations

import re

_METHODS = b"GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE"
_REQUEST_LINE = re.compile(rb"^(?:" + _METHODS + rb") [\x21-\x7e]{1,8000} HTTP/1\.[01]\r?\n")
_HOST = re.compile(rb"\r?\nhost:[ \t]*([^\r\n]{1,255})(?:\r?\n|$)", re.IGNORECASE)
_HOST_NAME = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
# RFC 4253 §4.2: "SSH-protoversion-softwareversion"; 1.99 is a server speaking both.
_SSH_BANNER = re.compile(rb"^SSH-(?:2\.0|1\.99)-[\x21-\x7e]{1,240}")


def is_http_request(payload: bytes) -> bool:
    return _REQUEST_LINE.match(payload) is not None


def http_host(payload: bytes) -> str | None:
    """The Host header's name, without a port; None when absent or not a host name."""
    head = payload.split(b"\r\n\r\n", 1)[0]
    found = _HOST.search(head)
    if found is None:
        return None
    value = found.group(1).decode("ascii", "replace").strip()
    host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    return host.lower() if _HOST_NAME.match(host) else None


def is_ssh_banner(payload: bytes) -> bool:
    return _SSH_BANNER.match(payload) is not None

"""The configuration of the local Unbound `serve` runs as a recursive upstream (pure).

Every path and number comes in as a plain value; the driver (dataplane/unbound.py)
finds the files, writes the text and runs the process. Unbound reads only the file we
pass with `-c`, so nothing of Debian's /etc/unbound (its own unbound.service) applies:
every default that would point there (directory, pidfile, username) is set here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
# 5335 is the port the Pi-hole and AdGuard guides give a local Unbound; Debian's own
# unbound.service takes 127.0.0.1:53, and our resolver answers on port 53 of the gateways.
DEFAULT_PORT = 5335


@dataclass(frozen=True)
class UnboundConf:
    directory: str  # working directory: config, pidfile, trust anchor copy
    host: str = DEFAULT_HOST  # a loopback address: it answers our resolver only
    port: int = DEFAULT_PORT
    root_hints: str | None = None  # None: Unbound's built-in root server addresses
    # An RFC 5011 trust anchor file Unbound may rewrite; None: no DNSSEC validation.
    trust_anchor: str | None = None
    # Tests point the root hints at a fake root on loopback, which Unbound otherwise
    # never asks (a resolver that queries itself loops). Never on in the product.
    query_localhost: bool = False
    verbosity: int = 1

    @property
    def pidfile(self) -> str:
        return f"{self.directory}/unbound.pid"

    @property
    def path(self) -> str:
        return f"{self.directory}/unbound.conf"


def _quoted(value: str) -> str:
    if any(c in value for c in '"\n\r\0'):
        raise ValueError(f"{value!r}: a quote, newline or NUL cannot be in an unbound.conf value")
    return f'"{value}"'


def render_unbound_conf(conf: UnboundConf) -> str:
    """The whole unbound.conf text; raises ValueError for a value it cannot hold."""
    address = ipaddress.ip_address(conf.host)
    if not address.is_loopback:
        raise ValueError(f"{conf.host}: the local Unbound listens on a loopback address only")
    if not 1 <= conf.port <= 65535:
        raise ValueError(f"{conf.port}: not a port")
    localhost = "127.0.0.0/8" if address.version == 4 else "::1/128"
    validate = conf.trust_anchor is not None
    lines = [
        "# Written by wirewarden serve at each start; edits are lost.",
        "server:",
        f"    directory: {_quoted(conf.directory)}",
        f"    pidfile: {_quoted(conf.pidfile)}",
        # Run as serve's user, in the foreground, logging to stderr (serve logs it):
        # see docs/dns.md for why the privileges are not dropped.
        '    chroot: ""',
        '    username: ""',
        "    do-daemonize: no",
        "    use-syslog: no",
        '    logfile: ""',
        f"    verbosity: {conf.verbosity}",
        f"    interface: {conf.host}",
        f"    port: {conf.port}",
        "    interface-automatic: no",
        "    access-control: 0.0.0.0/0 refuse",
        "    access-control: ::/0 refuse",
        f"    access-control: {localhost} allow",
        "    num-threads: 1",
        "    qname-minimisation: yes",
        "    prefetch: yes",
        "    hide-identity: yes",
        "    hide-version: yes",
        # Our resolver retries over TCP when an answer is truncated; 1232 avoids
        # fragmented UDP (DNS flag day 2020).
        "    edns-buffer-size: 1232",
        f"    do-not-query-localhost: {'no' if conf.query_localhost else 'yes'}",
        f'    module-config: "{"validator iterator" if validate else "iterator"}"',
        # Extended DNS Errors: a SERVFAIL for a name that fails DNSSEC says so, and our
        # resolver passes it on instead of asking the next upstream (dns/upstream.py).
        "    ede: yes",
    ]
    if conf.trust_anchor is not None:
        lines.append(f"    auto-trust-anchor-file: {_quoted(conf.trust_anchor)}")
    if conf.root_hints is not None:
        lines.append(f"    root-hints: {_quoted(conf.root_hints)}")
    lines += ["remote-control:", "    control-enable: no", ""]
    return "\n".join(lines)

"""The local Unbound `serve` runs as a recursive upstream: its files in our data dir,
the process supervised (dataplane/supervise.py), ready when it answers on loopback.

The config text is a pure function (domain/unbound.py); this module finds what it
points at (the unbound binary, root hints, a trust anchor) and runs it.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from wirewarden.dataplane.run import CommandError, run
from wirewarden.dataplane.supervise import Supervised
from wirewarden.domain.unbound import DEFAULT_HOST, DEFAULT_PORT, UnboundConf, render_unbound_conf

log = logging.getLogger(__name__)

# Debian's dns-root-data: the root servers' addresses and the root zone's DNSSEC key.
ROOT_HINTS = Path("/usr/share/dns/root.hints")
ROOT_KEY = Path("/usr/share/dns/root.key")
# unbound lives in /usr/sbin, which a non-root PATH often lacks.
SBIN = ("/usr/sbin", "/sbin")
READY_SECONDS = 10.0


@dataclass(frozen=True)
class UnboundOptions:
    directory: Path  # ours alone (config, pidfile, trust anchor); created 0700
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    dnssec: bool = True  # validate when a root trust anchor is available
    root_hints: Path = ROOT_HINTS  # used when the file exists, else Unbound's built-in
    root_key: Path = ROOT_KEY  # the trust anchor our copy starts from
    query_localhost: bool = False  # tests only: a fake root on loopback
    binary: str = "unbound"
    # Seeds the trust anchor when dns-root-data has none (it may ask the network);
    # None: never run it.
    anchor_tool: str | None = "unbound-anchor"


def find_binary(name: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    return shutil.which(name, path=path)


class LocalUnbound:
    """start() before the resolver asks it, stop() after; restarts in between."""

    def __init__(self, options: UnboundOptions, ready_seconds: float = READY_SECONDS) -> None:
        self.options, self.ready_seconds = options, ready_seconds
        self.process: Supervised | None = None

    @property
    def label(self) -> str:
        return f"unbound on {self.options.host}:{self.options.port}"

    def start(self) -> None:
        binary = find_binary(self.options.binary)
        if binary is None:
            raise CommandError([self.options.binary], "command not found (is it installed?)")
        conf = self.write_conf()
        _stop_stale(Path(conf.pidfile), conf.path)
        argv = [binary, "-d", "-c", conf.path]
        self.process = Supervised("unbound", argv, self.answers, logger=log)
        if self.process.start(self.ready_seconds):
            log.info("DNS: %s answering", self.label)
        else:
            log.warning(
                "DNS: %s not answering after %g s; queries it should answer get SERVFAIL "
                "until it does",
                self.label,
                self.ready_seconds,
            )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def write_conf(self) -> UnboundConf:
        directory = self.options.directory
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        hints = self.options.root_hints
        conf = UnboundConf(
            directory=str(directory.resolve()),
            host=self.options.host,
            port=self.options.port,
            root_hints=str(hints) if hints.is_file() else None,
            trust_anchor=self._trust_anchor(),
            query_localhost=self.options.query_localhost,
        )
        _write_private(Path(conf.path), render_unbound_conf(conf))
        return conf

    def _trust_anchor(self) -> str | None:
        """Our own copy of the root key (Unbound rewrites it as the key rolls, RFC 5011),
        seeded from dns-root-data or by unbound-anchor; None: no validation."""
        if not self.options.dnssec:
            log.info("DNS: %s without DNSSEC validation (turned off)", self.label)
            return None
        ours = self.options.directory / "root.key"
        shipped = self.options.root_key
        if shipped.is_file() and (
            not _has_key(ours) or shipped.stat().st_mtime > ours.stat().st_mtime
        ):
            # A newer shipped key (a Debian update after a rollover serve slept through)
            # starts the tracking over.
            _write_private(ours, shipped.read_text())
        elif not _has_key(ours) and (anchor := self._anchor_tool()) is not None:
            # Writes its built-in root key and checks it over the network when it can;
            # exit status 1 only says the file was (re)written.
            try:
                run([anchor, "-a", str(ours)], timeout=60, check=False)
            except CommandError as exc:
                log.warning("DNS: unbound-anchor failed: %s", exc)
        if _has_key(ours):
            return str(ours.resolve())
        log.warning(
            "DNS: %s without DNSSEC validation: no root trust anchor (install dns-root-data "
            "for %s, or unbound-anchor)",
            self.label,
            shipped,
        )
        return None

    def _anchor_tool(self) -> str | None:
        tool = self.options.anchor_tool
        return find_binary(tool) if tool else None

    def answers(self) -> bool:
        """True when it answers a query for `localhost.` (a zone it serves itself, so
        the probe never leaves the machine)."""
        ident = secrets.randbits(16)
        header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)  # id, RD, one question
        query = header + b"\x09localhost\x00\x00\x01\x00\x01"  # localhost. A IN
        family = socket.AF_INET6 if ":" in self.options.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            sock.sendto(query, (self.options.host, self.options.port))
            try:
                reply = sock.recv(512)
            except TimeoutError:
                return False
        return len(reply) >= 12 and struct.unpack("!H", reply[:2])[0] == ident


def _has_key(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _write_private(path: Path, text: str) -> None:
    """Temp file (0600) + rename: never a half-written file for Unbound to read."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _stop_stale(pidfile: Path, conf_path: str) -> None:
    """End an Unbound left running on our config by a serve that was killed (SIGKILL
    gives serve no chance to stop its children): it holds the port we need."""
    try:
        pid = int(pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return
    if conf_path.encode() not in cmdline:
        return  # the pid is someone else's now
    log.warning("DNS: stopping unbound %d left running by an earlier serve", pid)
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _gone(pid):
                return
            time.sleep(0.05)


def _gone(pid: int) -> bool:
    """Exited (a zombie counts: init reaps it, or nobody does in a bare container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")

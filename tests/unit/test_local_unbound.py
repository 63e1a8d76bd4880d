"""The supervised local Unbound with a real unbound: recursion from a fake root server on
loopback through our resolver, a restart after it is killed, nothing left running after
stop (or after a failing test), and an Unbound a killed serve left behind replaced.

Root hints carry no port, so the fake root listens on port 53 of a loopback address of
its own (127.53.x.y): that needs root, as CI has.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.dnsfake import address_for, root_hints
from tests.ports import free_port
from wirewarden.dataplane.unbound import LocalUnbound, UnboundOptions, find_binary
from wirewarden.dns.lists import ListStore
from wirewarden.dns.runtime import DnsConfig, DnsRuntime, Ports
from wirewarden.dns.upstream import UpstreamSet, parse_upstreams
from wirewarden.domain.dnsstate import DnsDirectory

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(find_binary("unbound") is None, reason="unbound not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the fake root needs port 53 (root)"),
]


def _pids_running(conf_path: str) -> list[int]:
    """Processes whose command line names our config (what must not outlive a test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if conf_path.encode() in argv and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _options(directory: Path, hints: Path) -> UnboundOptions:
    """Unbound recursing from the fake root: on loopback, and nothing to validate with."""
    return UnboundOptions(
        directory,
        port=free_port(),
        dnssec=False,  # the fake root signs nothing
        root_hints=hints,
        query_localhost=True,  # the fake root is on loopback
        anchor_tool=None,
    )


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Rig:
    unbound: LocalUnbound
    runtime: DnsRuntime
    port: int  # our resolver's

    def ask(self, name: str) -> dns.message.Message:
        query = dns.message.make_query(name, "A")
        return dns.query.udp(query, "127.0.0.1", timeout=5, port=self.port)

    def address(self, name: str) -> list[str]:
        answer = self.ask(name)
        assert answer.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(answer.rcode())
        return [rd.to_text() for rrset in answer.answer for rd in rrset]


@pytest.fixture
def fake_root(tmp_path: Path) -> Iterator[Path]:
    """The fake root on its own loopback address; yields a root hints file naming it."""
    address = f"127.53.{random.randint(1, 254)}.{random.randint(1, 254)}"
    argv = [sys.executable, "-m", "tests.dnsfake", address, "53", "--root"]
    log = open(tmp_path / "fake-root.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: b"fake DNS" in (tmp_path / "fake-root.log").read_bytes(), 10, "the fake root")
        hints = tmp_path / "root.hints"
        hints.write_text(root_hints(address))
        yield hints
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        log.close()


@pytest.fixture
def rig(tmp_path: Path, fake_root: Path) -> Iterator[Rig]:
    """Our resolver with the local Unbound as its only upstream, as `serve` runs them."""
    options = _options(tmp_path / "unbound", fake_root)
    unbound = LocalUnbound(options)
    upstreams = parse_upstreams(f"unbound://127.0.0.1:{options.port}")
    port = free_port()
    ports = Ports(
        revision=lambda: 1,
        directory=lambda: DnsDirectory(1, (), ()),
        write_log=lambda records: None,
        prune_log=lambda cutoff, rows: 0,
    )
    config = DnsConfig(port=port, extra_listen=("127.0.0.1",), allow_any_source=True)
    runtime = DnsRuntime(config, UpstreamSet(upstreams), ListStore(tmp_path), ports, [unbound])
    conf_path = str((tmp_path / "unbound" / "unbound.conf").resolve())
    try:
        runtime.start()
        yield Rig(unbound, runtime, port)
    finally:
        runtime.stop()
        for pid in _pids_running(conf_path):  # only if stop() failed: then the test fails
            os.kill(pid, signal.SIGKILL)
    assert not _pids_running(conf_path), "unbound outlived the resolver's stop()"


def test_answers_come_back_through_the_local_unbound(rig: Rig) -> None:
    assert rig.unbound.process is not None and rig.unbound.process.pid is not None
    for name in ("www.normal.example", "deep.sub.normal.example"):
        assert rig.address(name) == [address_for(name)[0]]
    assert rig.ask("nxthing.example").rcode() == dns.rcode.NXDOMAIN
    (status,) = rig.runtime.resolver.upstreams.status()
    assert status["upstream"] == f"unbound://127.0.0.1:{rig.unbound.options.port}"
    assert status["healthy"] and status["answered"] >= 2


def test_a_killed_unbound_is_started_again(rig: Rig) -> None:
    process = rig.unbound.process
    assert process is not None
    first = process.pid
    assert first is not None and process.starts == 1
    os.kill(first, signal.SIGKILL)
    _wait(lambda: process.pid not in (None, first), 10, "unbound to be started again")
    assert process.starts == 2
    _wait(rig.unbound.answers, 10, "the new unbound to answer")
    assert rig.address("after.restart.example") == [address_for("after.restart.example")[0]]


def test_an_unbound_left_by_a_killed_serve_is_replaced(tmp_path: Path, fake_root: Path) -> None:
    options = _options(tmp_path / "u", fake_root)
    conf = LocalUnbound(options).write_conf()
    binary = find_binary("unbound")
    assert binary is not None
    # What a SIGKILLed serve leaves: an Unbound on our config, holding our port.
    orphan = subprocess.Popen(
        [binary, "-d", "-c", conf.path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    unbound = LocalUnbound(options)
    try:
        _wait(lambda: Path(conf.pidfile).exists(), 10, "the orphan's pidfile")
        unbound.start()
        assert orphan.wait(timeout=10) is not None  # ended by start()
        assert unbound.process is not None and unbound.process.pid not in (None, orphan.pid)
        assert unbound.answers()
    finally:
        unbound.stop()
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
    assert not _pids_running(conf.path)

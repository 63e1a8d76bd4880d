"""What the namespace benchmarks share: small helpers, and running the benchmark itself
inside a network namespace of its own that is removed afterwards.

`run_in_netns` re-runs the calling script with `--inner --workdir DIR` inside a new network
namespace, with a private tmpfs on /run/wireguard (wireguard-go keeps its UAPI sockets
there for the whole host, so other namespaces' userspace interfaces are neither listed by
`wg show all` nor touched). Every process left in the namespace is killed at the end, also
on failure or Ctrl-C, then the namespace and the work directory are removed.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def cpu_seconds(pid: int, ended_children: bool = False) -> float:
    """User + system CPU seconds a process has used; with `ended_children`, also those of
    the children it has waited for (a postmaster's ended backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if ended_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(msg, flush=True)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank on the sorted values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def spread(values: list[float]) -> str:
    """Median and max of timings in seconds, as milliseconds."""
    return f"median {ms(statistics.median(values))}, max {ms(max(values))}"


def sh(argv: list[str], *, check: bool = True, timeout: float = 120, **kw: Any) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wg_go = sh(["wireguard-go", "--version"], check=False).strip().splitlines()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{wg_go[0] if wg_go else 'wireguard-go ?'}"
    )


def interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def netns_pids(ns: str) -> list[int]:
    out = sh(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def kill_netns_processes(ns: str, grace: float = 5.0) -> None:
    for pid in netns_pids(ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and netns_pids(ns):
        time.sleep(0.1)
    for _ in range(20):
        left = netns_pids(ns)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    log(f"warning: processes still in {ns}: {netns_pids(ns)}")


def run_in_netns(script: Path, prefix: str, tools: Sequence[str], keep: bool = False) -> int:
    """Run `script` (with this process's arguments) inside a namespace of its own; its exit
    status. `prefix` names the namespace, the work directory and the tmpfs."""
    if os.geteuid() != 0:
        log("this benchmark needs root (a network namespace and wireguard-go)")
        return 2
    for name in ("ip", "unshare", *tools):
        if shutil.which(name) is None:
            log(f"{name} is not on PATH")
            return 2
    tag = secrets.token_hex(3)
    ns = f"{prefix}-{tag}"
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-{tag}-"))
    workdir.chmod(0o700)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)  # explicit: a background job may inherit SIGINT ignored
    rc = 1
    child: subprocess.Popen[bytes] | None = None
    try:
        sh(["ip", "netns", "add", ns])
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        inner = [sys.executable, str(script), "--inner", "--workdir", str(workdir), *sys.argv[1:]]
        mount = f"mkdir -p /run/wireguard && mount -t tmpfs -o mode=0700 {prefix} /run/wireguard"
        private = ["unshare", "--mount", "--propagation", "private"]
        argv = ["ip", "netns", "exec", ns, *private, "sh", "-c", mount + ' && exec "$@"', "sh"]
        child = subprocess.Popen([*argv, *inner], cwd=script.parents[1])
        rc = child.wait()
    except KeyboardInterrupt:
        log("\ninterrupted: cleaning up")
        rc = 130
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                child.send_signal(signal.SIGTERM)  # lets the inner side stop what it started
                child.wait(timeout=15)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kill_netns_processes(ns)
        sh(["ip", "netns", "del", ns], check=False)
        if keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        gone = ns not in sh(["ip", "netns", "list"], check=False)
        log(f"cleanup: namespace {ns} {'removed' if gone else 'STILL PRESENT'}")
    return rc

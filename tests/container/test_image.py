"""The container image end to end: built from the repository's Dockerfile on a Debian base
made here (no registry image can be pulled), run in a network namespace of its own, and
a real client brought up through the container's `serve` from the config it exports.

```
 client netns --veth-- server netns (the container: podman run --network ns:...)
```

The base is `mmdebstrap --variant=minbase` (about 25 s on an idle machine, 90 s on a busy
one), kept in CACHE_DIR keyed by its package list and the month, so CI pays for it once a
month; the image, the container and the namespaces are removed even when the test fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.netns.topology import Netns, Topology, missing_tools, wait_until

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path("/var/cache/wirewarden-tests")
SUITE = "bookworm"
BASE_PACKAGES = ("python3",)  # the rest comes from the Dockerfile's apt-get, as for users
# This host's podman: crun refuses its hybrid cgroups, and root lacks CAP_SYS_RESOURCE to
# raise the default ulimits (DESIGN.md section 3).
PODMAN_OPTS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
GATEWAY = "10.99.0.1"


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the container test needs root (podman, mmdebstrap, network namespaces)"
    missing = [t for t in ("podman", "mmdebstrap", "runc") if shutil.which(t) is None]
    missing += missing_tools()
    if missing:
        return f"the container test needs (scripts/setup.sh installs them): {', '.join(missing)}"
    return None


SKIP_REASON = _skip_reason()
pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]


class Timer:
    """How long each step took, printed with the test's output (pytest -rP shows it)."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()

    def lap(self, step: str) -> None:
        now = time.monotonic()
        print(f"{step}: {now - self.last:.1f} s (total {now - self.start:.1f} s)")
        self.last = now


def podman(*args: str, timeout: float = 120, check: bool = True) -> str:
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def base_tar() -> Path:
    """The Debian base as a tar, from the cache or made now (atomically: a run that stops
    half-way leaves no half tar behind for the next)."""
    key_text = f"{SUITE} minbase {','.join(BASE_PACKAGES)} {date.today():%Y-%m}"
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    path = CACHE_DIR / f"{SUITE}-{key}.tar"
    if path.is_file():
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.tar")
    argv = ["mmdebstrap", "--quiet", "--variant=minbase", "--format=tar"]
    argv.append(f"--include={','.join(BASE_PACKAGES)}")
    try:
        subprocess.run([*argv, SUITE, str(partial)], check=True, timeout=900)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    for old in CACHE_DIR.glob(f"{SUITE}-*.tar"):
        if old != path:  # last month's: nobody asks for it again
            old.unlink(missing_ok=True)
    return path


@pytest.fixture
def image(tmp_path: Path) -> Iterator[str]:
    """localhost/wirewarden-test:<token> from the repository's Dockerfile; removed after."""
    timer = Timer()
    token = secrets.token_hex(3)
    base, tag = f"localhost/wirewarden-test-base:{token}", f"localhost/wirewarden-test:{token}"
    try:
        tar = base_tar()
        timer.lap("base tar (mmdebstrap or cache)")
        podman("import", "--quiet", str(tar), base, timeout=300)
        timer.lap("podman import")
        # The build context the Dockerfile expects: the wheels of the project and of every
        # dependency in dist/wheels (what scripts/build-image makes).
        wheels = tmp_path / "context" / "dist" / "wheels"
        pip = [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), str(ROOT)]
        built = subprocess.run(pip, capture_output=True, text=True, timeout=600, check=False)
        assert built.returncode == 0, built.stderr
        timer.lap("pip wheel (project + dependencies)")
        podman(
            "build",
            "--quiet",
            "--layers=false",  # no intermediate images left behind
            *PODMAN_OPTS,
            "--build-arg",
            f"BASE={base}",
            "-f",
            str(ROOT / "Dockerfile"),
            "-t",
            tag,
            str(tmp_path / "context"),
            timeout=900,
        )
        timer.lap("podman build")
        yield tag
    finally:
        podman("rmi", "--force", tag, base, check=False)


class ContainerServe:
    """`wirewarden serve` in a container whose network is the topology's server namespace;
    its API on that namespace's loopback."""

    def __init__(self, topology: Topology, image: str) -> None:
        self.server: Netns = topology.server
        self.name = f"ww{topology.token}-serve"
        # /proc/sys is read-only in a container: forwarding is the host's job (compose.yaml).
        self.server.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        self.server.run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        podman(
            "run",
            "--detach",
            "--name",
            self.name,
            *PODMAN_OPTS,
            "--cap-add",
            "NET_ADMIN",
            "--device",
            "/dev/net/tun",
            "--network",
            f"ns:/run/netns/{self.server.name}",
            "--env",
            "WIREWARDEN_HTTP=127.0.0.1:8000",
            "--env",
            "WIREWARDEN_RECONCILE_PERIOD=1",
            image,
        )
        wait_until(self._healthy, timeout=60, what="serve to answer /healthz", interval=0.5)
        created = podman("exec", self.name, "wirewarden", "token", "create", "--name", "test")
        self.token = created.splitlines()[-1]

    def _healthy(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name)
        if state != "true":
            raise RuntimeError(f"the container stopped:\n{self.logs()}")
        return self._curl(["-o", "/dev/null", "-w", "%{http_code}", "/healthz"]) == "200"

    def _curl(self, args: list[str], body: str | None = None) -> str:
        argv = ["curl", "-sS", "--noproxy", "*", "--max-time", "30", *args[:-1]]
        argv.append(f"http://127.0.0.1:8000{args[-1]}")
        return self.server.run(argv, input=body, check=False, timeout=40).stdout

    def api(self, method: str, path: str, body: Any = None, *, text: bool = False) -> Any:
        args = ["-X", method, "-H", f"Authorization: Bearer {self.token}", "--fail-with-body"]
        if body is not None:
            args += ["-H", "content-type: application/json", "--data-binary", "@-"]
        out = self._curl([*args, f"/api/v1{path}"], json.dumps(body) if body else None)
        return out if text else json.loads(out)

    def logs(self) -> str:
        return podman("logs", self.name, check=False, timeout=30)

    def remove(self) -> None:
        podman("rm", "--force", "--volumes", self.name, check=False, timeout=60)


def test_image_serves_a_client_through_a_real_tunnel(image: str) -> None:
    timer = Timer()
    with Topology() as topology:
        client = topology.add_client()
        serve = ContainerServe(topology, image)
        try:
            timer.lap("container up (serve answers)")
            ifname = topology.unique_ifname("wg")
            iface = serve.api(
                "POST",
                "/interfaces",
                {"name": ifname, "address": f"{GATEWAY}/24", "endpoint": client.server_ip},
            )
            peer = serve.api("POST", f"/interfaces/{ifname}/peers", {"name": "laptop"})
            config = serve.api("GET", f"/peers/{peer['id']}/config", text=True)
            assert f"Endpoint = {client.server_ip}:{iface['listen_port']}" in config, config
            client.wg_quick_up(config)
            wait_until(lambda: client.ping(GATEWAY), timeout=20, what="a ping of the gateway")
            timer.lap("tunnel up, gateway answers")
        except BaseException:
            print(serve.logs())
            raise
        finally:
            serve.remove()

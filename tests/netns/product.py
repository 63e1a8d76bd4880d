"""Run the product (`wirewarden serve` and the CLI) inside a topology's server namespace.

The API listens on the server namespace's loopback, so every API call goes through a
command run inside that namespace (curl for single calls, a short Python script with httpx
for bulk work). The data dir lives in the topology's temp dir and goes away with it; the
wireguard-go processes `serve` starts outlive it on purpose and are killed with the
namespace by `Topology.close()`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.netns.topology import Netns, Topology, wait_until

WIREWARDEN = str(Path(sys.executable).parent / "wirewarden")
API_HOST = "127.0.0.1"
API_PORT = 8000


class ApiError(AssertionError):
    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {path} -> {status}: {body}")
        self.status = status
        self.body = body


class Product:
    """`wirewarden serve` in the server namespace, with a bearer token for its API."""

    def __init__(
        self,
        topology: Topology,
        *,
        public_host: str | None = None,
        netns: Netns | None = None,
        listen: str = f"{API_HOST}:{API_PORT}",
        cacert: Path | None = None,
        env: dict[str, str] | None = None,
        name: str = "serve",
    ) -> None:
        """By default on the server namespace's loopback over http; a fleet's control
        plane elsewhere (`netns`, `listen`) over https with a certificate `cacert` signs
        (WIREWARDEN_TLS_CERT/KEY in `env`)."""
        self.topology = topology
        self.server: Netns = netns or topology.server
        self.name = name
        self.data_dir = topology.workdir / f"{name}-data"
        self.cacert = cacert
        self.base_url = f"{'https' if cacert else 'http'}://{listen}"
        self.env = {
            "WIREWARDEN_DATA_DIR": str(self.data_dir),
            "WIREWARDEN_HTTP": listen,
            "WIREWARDEN_RECONCILE_PERIOD": "1",
            "WIREWARDEN_WG_IMPLEMENTATION": "wireguard-go",
            "WIREWARDEN_LOG_LEVEL": "info",
            **(env or {}),
        }
        if public_host is not None:
            self.env["WIREWARDEN_PUBLIC_HOST"] = public_host
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        made = self.cli("token", "create", "--name", f"e2e-{name}")
        self.token = made.stdout.strip().splitlines()[-1]

    # ------------------------------------------------------------------ serve

    @property
    def log_path(self) -> str:
        return self.topology.log_path(f"{self.name}.log")

    def log(self) -> str:
        path = Path(self.log_path)
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 20) -> None:
        assert self.proc is None, "serve is already running"
        self.starts += 1
        with open(self.log_path, "a") as log:
            log.write(f"\n===== serve start #{self.starts} =====\n")
        self.proc = self.server.popen([WIREWARDEN, "serve"], env=self.env, log_path=self.log_path)
        proc = self.proc

        def healthy() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}:\n{self.log()}")
            return self._curl(["-o", "/dev/null", "-w", "%{http_code}", "/healthz"]) == "200"

        wait_until(healthy, timeout=timeout, what="serve to answer /healthz", interval=0.1)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM serve and wait for it to exit (wireguard-go keeps running)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            raise AssertionError(f"serve did not stop on SIGTERM:\n{self.log()}") from None

    def close(self) -> None:
        self.stop()

    # -------------------------------------------------------------------- CLI

    def cli(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return self.server.run([WIREWARDEN, *args], env=self.env, check=check, timeout=timeout)

    # -------------------------------------------------------------------- API

    def _curl(self, args: list[str], input: str | None = None) -> str:
        argv = ["curl", "-sS", "--noproxy", "*", "--max-time", "30", *args[:-1]]
        if self.cacert is not None:
            argv[1:1] = ["--cacert", str(self.cacert)]
        argv.append(self.base_url + args[-1])
        result = self.server.run(argv, input=input, check=False, timeout=40)
        return result.stdout

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One API call; returns (status, parsed JSON or text)."""
        args = ["-X", method, "-H", f"Authorization: Bearer {self.token}"]
        args += ["-w", "\n%{http_code}"]
        data = None
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
            data = json.dumps(body)
        out = self._curl([*args, f"/api/v1{path}"], input=data)
        text, _, code = out.rpartition("\n")
        status = int(code) if code.isdigit() else 0
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def api(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        status, parsed = self.request(method, path, body)
        if status != expect:
            raise ApiError(method, path, status, parsed)
        return parsed

    def create_interface(self, **body: Any) -> dict[str, Any]:
        created: dict[str, Any] = self.api("POST", "/interfaces", body, expect=201)
        return created

    def create_peer(self, interface: str, **body: Any) -> dict[str, Any]:
        created: dict[str, Any] = self.api(
            "POST", f"/interfaces/{interface}/peers", body, expect=201
        )
        return created

    def peer_config(self, peer_id: int) -> str:
        text: str = self.api("GET", f"/peers/{peer_id}/config")
        return text

    def python(
        self, script: str, *args: str, input: str | None = None, timeout: float = 300
    ) -> str:
        """Run a Python script (httpx at hand) in the server namespace with the API's base
        URL and the token as its first arguments; returns its stdout."""
        argv = [sys.executable, "-c", script, self.base_url, self.token, *args]
        return self.server.run(argv, input=input, timeout=timeout).stdout

    # ------------------------------------------------------------ data plane

    def wg_allowed_ips(self, ifname: str) -> dict[str, str]:
        """Each peer's AllowedIPs as `wg show` prints them ("" for none)."""
        result = self.server.run(["wg", "show", ifname, "allowed-ips"], check=False)
        lines = (line.split("\t", 1) for line in result.stdout.splitlines())
        return {key: "" if ips == "(none)" else ips for key, ips in lines}

    def wg_peers(self, ifname: str) -> list[str]:
        """Public keys of the peers the server's WireGuard interface holds."""
        result = self.server.run(["wg", "show", ifname, "peers"], check=False)
        return result.stdout.split() if result.returncode == 0 else []

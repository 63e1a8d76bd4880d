"""WireGuard devices: kernel module when present, else a supervised wireguard-go."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from wirewarden.dataplane import links, sysctl, uapi
from wirewarden.dataplane.run import CommandError, run, spawn_detached
from wirewarden.domain import uapi as messages
from wirewarden.domain.render import wg_peers_conf
from wirewarden.domain.state import DeviceDump, PeerState
from wirewarden.domain.wgdump import parse_all_dump

log = logging.getLogger(__name__)
UAPI_DIR = Path("/var/run/wireguard")
# Keeps each `wg set ... peer K remove` argv far below ARG_MAX.
REMOVE_BATCH = 2000


def kernel_module_present() -> bool:
    return Path("/sys/module/wireguard").exists()


class WireGuard:
    """Creates, configures and observes WireGuard devices through `wg` and `ip`."""

    def __init__(self, implementation: str, log_dir: Path, userspace_binary: str = "wireguard-go"):
        if implementation not in ("auto", "kernel", "wireguard-go"):
            raise ValueError(f"unknown WireGuard implementation {implementation!r}")
        self.implementation = implementation
        self.log_dir = log_dir
        self.userspace_binary = userspace_binary
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def use_kernel(self) -> bool:
        if self.implementation == "auto":
            return kernel_module_present()
        return self.implementation == "kernel"

    def create(self, name: str) -> None:
        if self.running(name):
            # Another pass (API call, loop, CLI process) made it after this plan observed it
            # missing: starting a second wireguard-go would unlink the live one's socket.
            return
        if self.use_kernel():
            links.create_kernel_wireguard(name)
        else:
            self._start_userspace(name)

    def running(self, name: str) -> bool:
        if name not in links.observe_links({name}):
            return False
        return self.use_kernel() or uapi.socket_path(UAPI_DIR, name).exists()

    def _start_userspace(self, name: str) -> None:
        self.reap()
        stale = uapi.socket_path(UAPI_DIR, name)
        if stale.exists():
            stale.unlink()
        # Every userspace device on the host counts, ours from before a restart included.
        sysctl.inotify_room(len(list(UAPI_DIR.glob("*.sock"))) + 1)
        env = dict(os.environ, LOG_LEVEL="error")
        log_path = str(self.log_dir / f"wireguard-go-{name}.log")
        child = spawn_detached([self.userspace_binary, "-f", name], log_path, env)
        self._children[name] = child
        self._wait_for_socket(name, child)

    def _wait_for_socket(self, name: str, child: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if uapi.socket_path(UAPI_DIR, name).exists():
                return
            if child.poll() is not None:
                raise CommandError(
                    [self.userspace_binary, name],
                    f"exited with status {child.returncode}; see {self.log_dir}",
                    child.returncode,
                )
            time.sleep(0.01)
        raise CommandError([self.userspace_binary, name], "no UAPI socket after 5 s")

    def remove(self, name: str) -> None:
        links.delete_link(name)
        child = self._children.pop(name, None)
        if child is not None:
            try:
                child.wait(timeout=3)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def reap(self) -> None:
        """Collect exited wireguard-go children so none lingers as a zombie process."""
        for name, child in list(self._children.items()):
            if child.poll() is not None:
                log.warning("wireguard-go for %s exited with %s", name, child.returncode)
                del self._children[name]

    def configure(self, name: str, private_key: str, listen_port: int) -> None:
        argv = ["wg", "set", name, "private-key", "/dev/stdin", "listen-port", str(listen_port)]
        run(argv, stdin=private_key + "\n")

    def set_peers(self, name: str, peers: Iterable[PeerState]) -> None:
        sock = self._userspace_socket(name)
        if sock is not None:
            uapi.send_set(sock, messages.set_peers_chunks(peers))
            return
        peers = list(peers)
        # addconf takes the keys on stdin and replaces each listed peer's AllowedIPs,
        # leaving every other peer (and its session) untouched.
        run(["wg", "addconf", name, "/dev/stdin"], stdin=wg_peers_conf(peers), timeout=60)
        # A config file cannot say "no AllowedIPs" (an empty value is a syntax error, a
        # missing one keeps the old list); `wg set ... allowed-ips ""` clears them.
        blocked = [p.public_key for p in peers if not p.allowed_ips]
        for start in range(0, len(blocked), REMOVE_BATCH):
            argv = ["wg", "set", name]
            for key in blocked[start : start + REMOVE_BATCH]:
                argv += ["peer", key, "allowed-ips", ""]
            run(argv, timeout=60)

    def remove_peers(self, name: str, public_keys: Iterable[str]) -> None:
        keys = list(public_keys)
        sock = self._userspace_socket(name)
        if sock is not None:
            uapi.send_set(sock, messages.remove_peers(keys))
            return
        for start in range(0, len(keys), REMOVE_BATCH):
            argv = ["wg", "set", name]
            for key in keys[start : start + REMOVE_BATCH]:
                argv += ["peer", key, "remove"]
            run(argv, timeout=60)

    def _userspace_socket(self, name: str) -> Path | None:
        """The UAPI socket of a userspace device; None for a kernel one (netlink via `wg`)."""
        if self.use_kernel():
            return None
        path = uapi.socket_path(UAPI_DIR, name)
        return path if path.exists() else None

    def dump_all(self) -> dict[str, DeviceDump]:
        return parse_all_dump(self.dump_text())

    def dump_text(self) -> str:
        return run(["wg", "show", "all", "dump"], timeout=30).stdout

"""End-to-end test topology in network namespaces (DESIGN.md section 4).

```
 client netns c1..cN --veth-- server netns --veth-- inet netns (203.0.113.0/24: HTTP, iperf3)
                                           --veth-- lan netns  (10.20.0.0/24: intranet host)
```

Every namespace, link and WireGuard interface name carries a short random per-topology
token, so topologies never collide with each other or with leftovers of an earlier run.
`Topology.close()` removes everything it made (processes, namespaces, links, UAPI sockets,
/etc/netns entries, temp dirs), also on failure and, as a last resort, at interpreter exit.

The server namespace is left exactly as a fresh namespace is: no forwarding, no NAT, no
firewall. Whatever runs there (the product, or a hand-made server in a test) sets that up.

Traffic only ever goes to addresses inside these namespaces.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from wirewarden.demo.netns import (
    HOST_RESOLVCONF_CONF,
    IFNAMSIZ_MAX,
    NETNS_ETC_DIR,
    REQUIRED_TOOLS,
    RESOLVCONF_SIGNATURE,
    WG_QUICK_ENV,
    WG_RUN_DIR,
    Netns,
    NetnsCommandError,
    address,
    host,
    missing_tools,
    pid_alive,
    veth,
    wait_socket_gone,
    wait_until,
)

__all__ = [
    "REQUIRED_TOOLS",
    "WG_QUICK_ENV",
    "WG_RUN_DIR",
    "Client",
    "Netns",
    "NetnsCommandError",
    "Topology",
    "missing_tools",
    "pid_alive",
    "wait_until",
]
_DNS_LINE = re.compile(r"^\s*DNS\s*=", re.IGNORECASE | re.MULTILINE)


class Client:
    """A client namespace linked to the server namespace by its own veth pair."""

    def __init__(
        self,
        topology: Topology,
        ns: Netns,
        *,
        ip: str,
        server_ip: str,
        dev: str,
        server_dev: str,
    ) -> None:
        self.topology = topology
        self.ns = ns
        self.ip = ip  # the client's underlay address
        self.server_ip = server_ip  # the server's underlay address on this link
        self.dev = dev  # veth name in the client namespace
        self.server_dev = server_dev  # veth name in the server namespace
        self._conf_dir = topology.workdir / "wg-quick" / ns.name
        self._up: list[Path] = []  # configs brought up with wg-quick, in order

    @property
    def wg_ifnames(self) -> list[str]:
        """The WireGuard interfaces currently up via wg-quick."""
        return [conf.stem for conf in self._up]

    def _write_conf(self, ifname: str, conf_text: str) -> Path:
        self._conf_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._conf_dir / f"{ifname}.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as conf:
            conf.write(conf_text)
        return path

    def wg_quick_up(self, conf_text: str) -> str:
        """Bring `conf_text` up with wg-quick + wireguard-go; return the interface name."""
        if _DNS_LINE.search(conf_text):
            self.topology.require_private_resolvconf(self.ns)
        ifname = self.topology.unique_ifname("wg")
        path = self._write_conf(ifname, conf_text)
        self.ns.run(["wg-quick", "up", str(path)], env=WG_QUICK_ENV, timeout=30)
        self._up.append(path)
        return ifname

    def wg_quick_down(self) -> None:
        """Take down every interface this client brought up (newest first)."""
        while self._up:
            path = self._up[-1]
            self.ns.run(["wg-quick", "down", str(path)], env=WG_QUICK_ENV, timeout=30)
            self._up.pop()
            wait_socket_gone(path.stem)

    def ping(self, ip: str, count: int = 1, timeout: float = 2) -> bool:
        """True when at least one of `count` echo requests to `ip` is answered."""
        argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", str(timeout), ip]
        limit = count * (timeout + 0.2) + 5
        try:
            return self.ns.run(argv, check=False, timeout=limit).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def http_get(self, url: str, timeout: float = 5) -> str | None:
        """The body of a successful GET of `url`, or None on any failure."""
        argv = ["curl", "-sS", "--fail", "--noproxy", "*", "--max-time", str(timeout), url]
        try:
            result = self.ns.run(argv, check=False, timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            return None
        return result.stdout if result.returncode == 0 else None

    def iperf3(
        self, server_ip: str, *, seconds: float = 2, reverse: bool = False, port: int = 5201
    ) -> dict[str, Any]:
        """Run an iperf3 TCP test against `server_ip`; return iperf3's JSON report."""
        argv = ["iperf3", "-c", server_ip, "-p", str(port), "-t", str(seconds), "-J"]
        if reverse:
            argv.append("-R")
        result = self.ns.run(argv, timeout=seconds + 20)
        report: dict[str, Any] = json.loads(result.stdout)
        return report


def _client_subnets() -> list[ipaddress.IPv4Network]:
    """/30 links for clients: 198.51.100.4/30 .. then 192.0.2.4/30 .. (TEST-NET-2, -1)."""
    subnets: list[ipaddress.IPv4Network] = []
    for block in ("198.51.100.0/24", "192.0.2.0/24"):
        subnets.extend(list(ipaddress.IPv4Network(block).subnets(new_prefix=30))[1:])
    return subnets


class Topology:
    """server + inet + lan namespaces, plus clients added on demand."""

    server_uplink_ip = "203.0.113.2"
    inet_ip = "203.0.113.1"
    inet_subnet = "203.0.113.0/24"
    lan_host_ip = "10.20.0.10"
    server_lan_ip = "10.20.0.1"
    lan_subnet = "10.20.0.0/24"
    http_port = 80
    iperf3_port = 5201
    inet_http_body = "hello from inet"
    lan_http_body = "hello from lan"

    def __init__(self) -> None:
        self.token = secrets.token_hex(3)  # 6 hex chars in every name
        self.workdir = Path(tempfile.mkdtemp(prefix=f"ww{self.token}-"))
        self.server_uplink_dev = f"up{self.token}"
        self.server_lan_dev = f"ln{self.token}"
        self.clients: list[Client] = []
        self._namespaces: list[Netns] = []
        self._ifnames: list[str] = []
        self._closed = False
        atexit.register(self.close)
        try:
            self.server = self._add_netns("srv")
            self.inet = self._add_netns("inet")
            self.lan = self._add_netns("lan")
            self._build()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def namespaces(self) -> list[Netns]:
        return list(self._namespaces)

    @property
    def ifnames(self) -> list[str]:
        """Every WireGuard interface name handed out by unique_ifname()."""
        return list(self._ifnames)

    # ---------------------------------------------------------------- building

    def _add_netns(self, role: str) -> Netns:
        netns = Netns(f"ww{self.token}-{role}")
        self._namespaces.append(netns)  # tracked before creation: cleaned up either way
        self._write_netns_etc(netns)
        host(["ip", "netns", "add", netns.name])
        netns.run(["ip", "link", "set", "lo", "up"])
        return netns

    _veth = staticmethod(veth)
    _address = staticmethod(address)

    def _build(self) -> None:
        inet_dev, lan_dev = f"in{self.token}", f"lh{self.token}"
        self._veth(self.server, self.server_uplink_dev, self.inet, inet_dev)
        self._address(self.server, self.server_uplink_dev, f"{self.server_uplink_ip}/24")
        self._address(self.inet, inet_dev, f"{self.inet_ip}/24")
        self.server.run(["ip", "route", "add", "default", "via", self.inet_ip])
        self._veth(self.server, self.server_lan_dev, self.lan, lan_dev)
        self._address(self.server, self.server_lan_dev, f"{self.server_lan_ip}/24")
        self._address(self.lan, lan_dev, f"{self.lan_host_ip}/24")
        self.lan.run(["ip", "route", "add", "default", "via", self.server_lan_ip])
        self._start_http(self.inet, self.inet_ip, self.inet_http_body)
        self._start_http(self.lan, self.lan_host_ip, self.lan_http_body)
        self._start_iperf3(self.inet, self.inet_ip)

    def log_path(self, name: str) -> str:
        """A path for a process log inside this topology's temp dir."""
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        return str(logs / name)

    def _start_http(self, ns: Netns, ip: str, body: str) -> None:
        docroot = self.workdir / f"http-{ns.name}"
        docroot.mkdir()
        (docroot / "index.html").write_text(body)
        argv = [sys.executable, "-m", "http.server", str(self.http_port)]
        self._start_service(
            ns, [*argv, "--bind", ip, "--directory", str(docroot)], ip, self.http_port
        )

    def _start_iperf3(self, ns: Netns, ip: str) -> None:
        argv = ["iperf3", "-s", "-B", ip, "-p", str(self.iperf3_port)]
        self._start_service(ns, argv, ip, self.iperf3_port)

    def _start_service(self, ns: Netns, argv: list[str], ip: str, port: int) -> None:
        """Start a TCP server and wait until it listens; on failure say why (its log)."""
        log = self.log_path(f"{Path(argv[0]).name}-{ns.name}-{port}.log")
        proc = ns.popen(argv, log_path=log)
        try:
            ns.wait_listening(ip, port, running=lambda: proc.poll() is None)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(
                f"{argv} failed in {ns.name}: {exc}\n{Path(log).read_text()}"
            ) from exc

    # ----------------------------------------------------------------- clients

    def add_client(self) -> Client:
        """A new client namespace on its own /30 link to the server namespace."""
        index = len(self.clients) + 1
        subnets = _client_subnets()
        if index > len(subnets):
            raise RuntimeError(f"at most {len(subnets)} clients per topology")
        server_addr, client_addr = list(subnets[index - 1].hosts())
        ns = self._add_netns(f"c{index}")
        dev, server_dev = f"c{index}{self.token}", f"s{index}{self.token}"
        self._veth(ns, dev, self.server, server_dev)
        self._address(ns, dev, f"{client_addr}/30")
        self._address(self.server, server_dev, f"{server_addr}/30")
        client = Client(
            self,
            ns,
            ip=str(client_addr),
            server_ip=str(server_addr),
            dev=dev,
            server_dev=server_dev,
        )
        self.clients.append(client)
        return client

    def _write_netns_etc(self, ns: Netns) -> None:
        """Files `ip netns exec` bind-mounts over /etc/resolv.conf and /etc/resolvconf.conf
        inside `ns`.

        The resolv.conf has no nameserver, so a stray name lookup in a namespace goes to
        its own loopback (and fails at once) instead of toward the host's nameserver.
        resolvconf run by wg-quick there writes only this file: openresolv keeps its state
        in a private dir, its dnsmasq/unbound subscribers are off, and the signature line
        stops it from backing up to the host's /etc/resolv.conf.bak."""
        etc = NETNS_ETC_DIR / ns.name
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"{RESOLVCONF_SIGNATURE}\n")
        if HOST_RESOLVCONF_CONF.exists():
            state_dir = self.workdir / f"resolvconf-{ns.name}"
            (etc / "resolvconf.conf").write_text(
                f"resolv_conf=/etc/resolv.conf\nstate_dir={state_dir}\n"
            )

    def write_resolv_conf(self, ns: Netns, text: str) -> None:
        """Replace the resolv.conf that processes started in `ns` from now on see (e.g. to
        point the server at a DNS upstream in the inet namespace)."""
        (NETNS_ETC_DIR / ns.name / "resolv.conf").write_text(text)

    def require_private_resolvconf(self, ns: Netns) -> None:
        """Refuse a DNS= line where resolvconf could touch the host's files."""
        version = subprocess.run(
            ["resolvconf", "--version"], capture_output=True, text=True, check=False
        ).stdout
        etc = NETNS_ETC_DIR / ns.name
        if "openresolv" not in version or not (etc / "resolvconf.conf").exists():
            raise RuntimeError(
                "a DNS= line needs openresolv with /etc/resolvconf.conf on the host, so that "
                f"{etc}/resolvconf.conf can keep it inside the namespace"
            )

    def unique_ifname(self, prefix: str = "wg") -> str:
        """A WireGuard interface name unique on the host (UAPI sockets in
        /var/run/wireguard are shared by all namespaces); removed at close()."""
        while True:
            name = f"{prefix}{self.token}{len(self._ifnames)}"
            if len(name) > IFNAMSIZ_MAX:
                raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ_MAX}")
            self._ifnames.append(name)
            if not (WG_RUN_DIR / f"{name}.sock").exists():
                return name

    # ----------------------------------------------------------------- cleanup

    def close(self) -> None:
        """Remove everything this topology made. Idempotent; runs every step even when
        one fails, then raises if any did."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        steps: list[Callable[[], None]] = [
            self._down_clients,
            self._delete_namespaces,
            self._delete_stray_links,
            self._remove_wg_sockets,
            self._remove_etc_netns,
            self._remove_workdir,
        ]
        for step in steps:
            try:
                step()
            except Exception as exc:
                errors.append(f"{step.__name__}: {exc}")
        atexit.unregister(self.close)
        if errors:
            raise RuntimeError("topology cleanup incomplete:\n" + "\n".join(errors))

    def _down_clients(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.wg_quick_down()

    def _delete_namespaces(self) -> None:
        errors: list[str] = []
        for netns in reversed(self._namespaces):
            try:
                netns.delete()
            except Exception as exc:
                errors.append(f"{netns.name}: {exc}")
        if errors:
            raise RuntimeError("; ".join(errors))

    def _delete_stray_links(self) -> None:
        """Links are made inside namespaces, but remove any in the root one just in case."""
        for name in self.root_links():
            host(["ip", "link", "del", name], check=False)

    def root_links(self) -> list[str]:
        """Links in the root namespace whose name carries this topology's token."""
        out = host(["ip", "-o", "link", "show"]).stdout
        names = (line.split(":")[1].strip().split("@")[0] for line in out.splitlines())
        return [name for name in names if self.token in name]

    def _remove_wg_sockets(self) -> None:
        for name in self._ifnames:
            for suffix in (".sock", ".name"):
                (WG_RUN_DIR / f"{name}{suffix}").unlink(missing_ok=True)

    def _remove_etc_netns(self) -> None:
        for netns in self._namespaces:
            shutil.rmtree(NETNS_ETC_DIR / netns.name, ignore_errors=True)
        with contextlib.suppress(OSError):
            NETNS_ETC_DIR.rmdir()  # only when empty (another topology may still use it)

    def _remove_workdir(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

"""Reaching the dashboard from another machine: `serve` over HTTPS with the self-signed
certificate it makes, and `serve` behind Caddy (packaging/caddy) with the live-status
WebSocket and the audit log's source address. The client runs in the inet namespace, the
server side in the server namespace; the topology removes both and everything in them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.netns.product import WIREWARDEN
from tests.netns.topology import Netns, Topology, wait_until
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "packaging" / "caddy" / "wirewarden.caddy"
SERVER = Topology.server_uplink_ip
CLIENT = Topology.inet_ip
PASSWORD = "a long enough passphrase"


@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_serve(topology: Topology, name: str, listen: str, **env: str) -> Serve:
    log = topology.workdir / f"{name}.log"
    environment = {
        "WIREWARDEN_DATA_DIR": str(topology.workdir / f"{name}-data"),
        "WIREWARDEN_WG_IMPLEMENTATION": "wireguard-go",
        "WIREWARDEN_DNS_ENABLED": "false",
        "COLUMNS": "200",  # one line per message in the log, whatever Rich guesses
        **env,
    }
    argv = [WIREWARDEN, "serve", "--listen", listen]
    proc = topology.server.popen(argv, env=environment, log_path=str(log))
    serve = Serve(proc, log)
    host, _, port = listen.rpartition(":")

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{serve.output()}")
        ss = topology.server.run(["ss", "-Htln", f"sport = :{port}"], check=False)
        return host in ss.stdout

    wait_until(listening, timeout=60, what=f"serve to listen on {listen}", interval=0.2)
    return serve


def client_script(ns: Netns, script: str, *args: str) -> dict[str, object]:
    """Run `script` (Python, with httpx and websockets at hand) in `ns`; its last line of
    output is JSON."""
    result = ns.run([sys.executable, "-c", script, *args], timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


HTTPS_CLIENT = r"""
import hashlib, json, ssl, sys, httpx
url, password = sys.argv[1], sys.argv[2]
host, port = url.removeprefix("https://").rsplit(":", 1)
# What a careful user does with a self-signed certificate: compare its fingerprint.
der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((host, int(port))))
seen = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
with httpx.Client(base_url=url, verify=False) as web:
    health = web.get("/healthz").json()
    login = web.post("/api/v1/auth/login", json={"name": "admin", "password": password})
print(json.dumps({"fingerprint": seen, "health": health, "login": login.status_code,
                  "cookie": login.headers.get("set-cookie", "")}))
"""


def test_serve_beyond_loopback_speaks_https_with_the_printed_fingerprint(
    topology: Topology,
) -> None:
    port = free_port()
    serve = start_serve(topology, "tls", f"{SERVER}:{port}")
    try:
        data = topology.workdir / "tls-data"
        out = serve.output()
        assert f"WireWarden on https://{SERVER}:{port}" in out
        fingerprint = out.split("check that they show this SHA-256 fingerprint:", 1)[1].split()[0]
        # No terminal: the password is in the 0600 file and nowhere in the output.
        secret = data / "initial-admin-password"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        password = secret.read_text().strip()
        assert len(password) >= 10 and password not in out
        assert "alembic" not in out.lower()  # migration chatter is DEBUG
        key = data / "tls" / "self-signed.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        seen = client_script(topology.inet, HTTPS_CLIENT, f"https://{SERVER}:{port}", password)
        assert seen["fingerprint"] == fingerprint
        assert seen["health"] == {"status": "ok", "version": seen["health"]["version"]}  # type: ignore[index]
        assert seen["login"] == 200 and "secure" in str(seen["cookie"]).lower()
        assert not secret.exists()  # gone at the first sign-in
    finally:
        serve.stop()


PROXY_CLIENT = r"""
import json, socket as net, ssl, sys, httpx
from websockets.sync.client import connect
url, root_ca, password = sys.argv[1], sys.argv[2], sys.argv[3]
trust = ssl.create_default_context(cafile=root_ca)  # Caddy's own CA, nothing else
spoof = {"X-Forwarded-For": "192.0.2.66"}  # the proxy must not pass this on
with httpx.Client(base_url=url, verify=trust, headers=spoof) as web:
    page = web.get("/login")
    csrf = web.cookies["ww_login_csrf"]
    form = {"name": "admin", "password": password, "csrf_token": csrf, "next": "/"}
    signed = web.post("/login", data=form)
    session = web.cookies["ww_session"]
    audit = web.get("/api/v1/audit", params={"action": "auth.login"}).json()
host, port = url.removeprefix("https://").rsplit(":", 1)
with trust.wrap_socket(net.create_connection((host, int(port))), server_hostname=host) as tls:
    issuer = tls.getpeercert()["issuer"]
with connect(url.replace("https", "wss") + "/ws/status", ssl=trust, origin=url,
             additional_headers={"Cookie": f"ww_session={session}"}) as socket:
    socket.send(json.dumps({"watch": [], "overview": True}))
    live = json.loads(socket.recv(timeout=20))
print(json.dumps({"login_page": page.status_code, "form": "csrf_token" in page.text,
                  "signed": signed.status_code, "location": signed.headers.get("location"),
                  "cookie": signed.headers.get("set-cookie", ""), "issuer": issuer,
                  "source": audit["items"][0]["source"], "live": live}))
"""


@pytest.fixture
def caddy(topology: Topology) -> Iterator[tuple[str, Path, int]]:
    """Caddy in the server namespace on SERVER:port with `tls internal`, proxying to
    127.0.0.1:<upstream> through packaging/caddy/wirewarden.caddy."""
    if shutil.which("caddy") is None:
        pytest.skip("caddy is not installed (apt install caddy; scripts/setup.sh does)")
    port, upstream = free_port(), free_port()
    home = topology.workdir / "caddy"
    home.mkdir()
    config = home / "Caddyfile"
    config.write_text(
        "{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n}\n\n"
        f"import {SNIPPET}\n\n"
        f"https://{SERVER}:{port} {{\n\ttls internal\n\timport wirewarden\n}}\n"
    )
    env = {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "WIREWARDEN_UPSTREAM": f"127.0.0.1:{upstream}",
    }
    argv = ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"]
    proc = topology.server.popen(argv, env=env, log_path=str(home / "caddy.log"))
    root = home / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError((home / "caddy.log").read_text())
        ss = topology.server.run(["ss", "-Htln", f"sport = :{port}"], check=False)
        return root.exists() and bool(ss.stdout.strip())

    try:
        try:
            wait_until(ready, timeout=30, what="caddy to listen", interval=0.2)
        except TimeoutError as exc:
            raise AssertionError((home / "caddy.log").read_text()) from exc
        yield f"https://{SERVER}:{port}", root, upstream
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "untrusted-proxy"])
def test_dashboard_behind_caddy(
    topology: Topology, caddy: tuple[str, Path, int], trusted: bool
) -> None:
    url, root_ca, upstream = caddy
    env = {"WIREWARDEN_ADMIN_PASSWORD": PASSWORD, "WIREWARDEN_PUBLIC_URL": url}
    if trusted:
        env["WIREWARDEN_TRUSTED_PROXIES"] = "127.0.0.1"
    serve = start_serve(topology, "proxied", f"127.0.0.1:{upstream}", **env)
    try:
        assert f"WireWarden on {url}" in serve.output()
        seen = client_script(topology.inet, PROXY_CLIENT, url, str(root_ca), PASSWORD)
    finally:
        serve.stop()
    assert seen["login_page"] == 200 and seen["form"]
    # An admin signing in to a server with no interface is sent to the first-run setup.
    assert seen["signed"] == 303 and seen["location"] == "/setup"
    # The certificate is Caddy's (verified against its CA alone).
    assert "Caddy Local Authority" in json.dumps(seen["issuer"])
    live = seen["live"]
    assert isinstance(live, dict) and live["totals"]["peers"] == 0
    if trusted:
        # The client's own address, not the proxy's nor what the client claimed.
        assert seen["source"] == CLIENT
        assert "secure" in str(seen["cookie"]).lower()
    else:
        assert seen["source"] == "127.0.0.1"
        assert "secure" not in str(seen["cookie"]).lower()
    assert os.path.exists(root_ca)

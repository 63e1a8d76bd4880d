"""Expose end to end: a client brought up from its exported config runs `wirewarden
expose` for a TCP and a UDP service on its own loopback; the inet namespace reaches both
through the server's public address, forwarded in the server's kernel."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.netns.product import WIREWARDEN, Product
from tests.netns.test_e2e_core import Tunnel, open_tunnel
from tests.netns.topology import Netns, Topology, wait_until
from tests.tlsca import issue

HTTP_PORT, UDP_PORT = 18080, 25565
PUBLIC_TCP, PUBLIC_UDP = 8080, 25565

UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(b"echo:" + data, addr)
"""

UDP_ASK = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
for _ in range(3):
    s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
    try:
        print(s.recvfrom(2048)[0].decode())
        break
    except TimeoutError:
        continue
"""


def services(topology: Topology, ns: Netns) -> None:
    """The client's own services, on its loopback only (the tunnel cannot reach them)."""
    docroot = topology.workdir / f"expose-{ns.name}"
    docroot.mkdir()
    (docroot / "index.html").write_text("served from the client's loopback")
    http = [sys.executable, "-m", "http.server", str(HTTP_PORT), "--bind", "127.0.0.1"]
    ns.popen([*http, "--directory", str(docroot)])
    ns.popen([sys.executable, "-c", UDP_ECHO, str(UDP_PORT)])
    wait_until(
        lambda: (
            ns.run(["curl", "-sf", f"http://127.0.0.1:{HTTP_PORT}/"], check=False).returncode == 0
        ),
        timeout=10,
        what="the client's HTTP service",
    )


def from_inet(topology: Topology) -> tuple[str | None, str]:
    """What the internet sees at the server's public ports: the HTTP body, the UDP answer."""
    url = f"http://{topology.server_uplink_ip}:{PUBLIC_TCP}/"
    got = topology.inet.run(["curl", "-sf", "--max-time", "3", url], check=False)
    ask = [sys.executable, "-c", UDP_ASK, topology.server_uplink_ip, str(PUBLIC_UDP)]
    udp = topology.inet.run(ask, check=False, timeout=15).stdout.strip()
    return (got.stdout if got.returncode == 0 else None), udp


def expose(tunnel: Tunnel, topology: Topology, *specs: str) -> subprocess.Popen[bytes]:
    log = topology.log_path(f"expose-{tunnel.client.ns.name}.log")
    return tunnel.client.ns.popen([WIREWARDEN, "expose", *specs], log_path=log)


def mappings(product: Product) -> list[dict[str, object]]:
    found: list[dict[str, object]] = product.api("GET", "/mappings")
    return found


def published(topology: Topology) -> bool:
    body, udp = from_inet(topology)
    return body == "served from the client's loopback" and udp == "echo:ping"


def test_tcp_and_udp_services_published_through_the_server(
    topology: Topology, product: Product
) -> None:
    tunnel = open_tunnel(topology, product, address="10.67.0.1/24")
    ns = tunnel.client.ns
    services(topology, ns)
    product.api("PATCH", f"/peers/{tunnel.peer['id']}", {"expose_ports": "8000-8100,25565"})
    assert from_inet(topology) == (None, "")  # nothing published yet

    # A port outside expose_ports: a clear error and exit status 1.
    refused = ns.run([WIREWARDEN, "expose", "127.0.0.1:22-2222"], check=False, timeout=30)
    assert refused.returncode == 1
    assert "2222" in refused.stderr and "expose_ports" in refused.stderr, refused.stderr

    specs = (f"127.0.0.1:{HTTP_PORT}-{PUBLIC_TCP}", f"127.0.0.1:{UDP_PORT}-{PUBLIC_UDP}/udp")
    started = time.monotonic()
    client = expose(tunnel, topology, *specs)
    wait_until(lambda: published(topology), timeout=10, what="the services from inet")
    first_byte = time.monotonic() - started
    print(f"expose: first byte served {first_byte:.2f} s after start")
    listed = mappings(product)
    assert {(m["proto"], m["remote_port"]) for m in listed} == {
        ("tcp", PUBLIC_TCP),
        ("udp", PUBLIC_UDP),
    }
    # The kernel counted each mapping's traffic, both ways (the page and the echo at least).
    counted = {m["proto"]: m["bytes"] for m in listed}
    assert counted["tcp"] > len("served from the client's loopback") and counted["udp"] > 0
    # Forwarded in the kernel: the server's table holds the forward, no process copies.
    table = product.server.run(["nft", "list", "map", "inet", "wirewarden", "expose_tcp"])
    assert f"{PUBLIC_TCP} : 10.67.0.2 . " in table.stdout, table.stdout

    # A serve restart keeps live mappings working.
    product.stop()
    assert published(topology)
    product.start()
    assert published(topology)

    # Ctrl-C: gone at once.
    client.send_signal(signal.SIGINT)
    assert client.wait(timeout=10) == 0
    assert mappings(product) == []
    wait_until(lambda: from_inet(topology)[0] is None, timeout=3, what="the forward removed")


def test_a_dead_client_loses_its_mappings_within_the_lease(
    topology: Topology, product: Product
) -> None:
    tunnel = open_tunnel(topology, product, address="10.68.0.1/24")
    services(topology, tunnel.client.ns)
    product.api("PATCH", f"/peers/{tunnel.peer['id']}", {"expose_ports": str(PUBLIC_TCP)})
    client = expose(tunnel, topology, f"127.0.0.1:{HTTP_PORT}-{PUBLIC_TCP}")
    wait_until(lambda: len(mappings(product)) == 1, timeout=10, what="the mapping")
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=5)
    killed = time.monotonic()
    assert len(mappings(product)) == 1  # no goodbye: the lease runs on
    wait_until(lambda: mappings(product) == [], timeout=90, interval=2, what="the lease to end")
    print(f"expose: mapping gone {time.monotonic() - killed:.0f} s after SIGKILL")
    assert from_inet(topology)[0] is None


def test_a_split_tunnel_client_gets_its_answers_back(topology: Topology, product: Product) -> None:
    """A client routing only the VPN: the server shows its gateway as the source, so the
    answers go back through the tunnel."""
    client = topology.add_client()
    ifname = topology.unique_ifname("ww")
    product.create_interface(name=ifname, address="10.69.0.1/24", endpoint=client.server_ip)
    peer = product.create_peer(ifname, name="split", allowed_ips="10.69.0.0/24")
    product.api("PATCH", f"/peers/{peer['id']}", {"expose_ports": str(PUBLIC_TCP)})
    config = product.peer_config(peer["id"])
    assert "AllowedIPs = 10.69.0.0/24" in config
    client.wg_quick_up(config)
    wait_until(lambda: client.ping("10.69.0.1", timeout=1), timeout=15, what="the gateway")
    services(topology, client.ns)
    log = topology.log_path("expose-split.log")
    client.ns.popen([WIREWARDEN, "expose", f"127.0.0.1:{HTTP_PORT}-{PUBLIC_TCP}"], log_path=log)
    url = f"http://{topology.server_uplink_ip}:{PUBLIC_TCP}/"

    def reached() -> bool:
        got = topology.inet.run(["curl", "-sf", "--max-time", "3", url], check=False)
        return got.stdout == "served from the client's loopback"

    wait_until(reached, timeout=10, what="the split-tunnel client's service from inet")


TLS_PORT = 18443
TLS_SERVICE = """
import http.server, ssl, sys
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"served over TLS from the client's loopback"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hello)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def test_http_and_https_services_by_name(topology: Topology) -> None:
    """`expose --http NAME PORT`: HTTP routed by Host, HTTPS by SNI without the server
    ever holding the service's key (the visitor verifies the client's own certificate)."""
    product = Product(topology, env={"WIREWARDEN_EXPOSE_DOMAIN": "vpn.test"})
    try:
        product.start()
        tunnel = open_tunnel(topology, product, address="10.70.0.1/24")
        ns = tunnel.client.ns
        services(topology, ns)
        shop = "shop.default.vpn.test"
        pki = issue(topology.workdir / "shop-pki", [shop])
        ns.popen([sys.executable, "-c", TLS_SERVICE, str(TLS_PORT), str(pki.cert), str(pki.key)])
        product.api("PATCH", f"/peers/{tunnel.peer['id']}", {"expose_ports": "80,443"})
        uplink = topology.server_uplink_ip

        def visit(host: str, scheme: str = "http") -> str | None:
            port = 443 if scheme == "https" else 80
            argv = ["curl", "-s", "--max-time", "3", "--resolve", f"{host}:{port}:{uplink}"]
            argv += ["--cacert", str(pki.ca), f"{scheme}://{host}/"]
            got = topology.inet.run(argv, check=False)
            return got.stdout if got.returncode == 0 else None

        assert "No service is published" in (visit("blog.default.vpn.test") or "")
        started = time.monotonic()
        log = topology.log_path("expose-names.log")
        client = ns.popen(
            [
                WIREWARDEN,
                "expose",
                "--http",
                "blog",
                f"127.0.0.1:{HTTP_PORT}",
                "--http",
                "shop",
                f"127.0.0.1:{TLS_PORT}",
            ],
            log_path=log,
        )
        wait_until(
            lambda: visit("blog.default.vpn.test") == "served from the client's loopback",
            timeout=10,
            what="the HTTP service by name from inet",
        )
        print(f"expose --http: first byte served {time.monotonic() - started:.2f} s after start")
        assert visit(shop, "https") == "served over TLS from the client's loopback"
        listed = {m["hostname"]: m for m in mappings(product)}
        assert listed["blog.default.vpn.test"]["url"] == "http://blog.default.vpn.test"
        assert listed[shop]["tls"] is True and listed[shop]["url"] == f"https://{shop}"
        assert listed[shop]["bytes"] > 0 and listed["blog.default.vpn.test"]["bytes"] > 0
        # Another tenant's zone, or a name nobody published: nobody's service.
        assert "No service is published" in (visit("blog.acme.vpn.test") or "")
        client.send_signal(signal.SIGINT)
        assert client.wait(timeout=10) == 0
        assert "No service is published" in (visit("blog.default.vpn.test") or "")
        assert visit(shop, "https") is None
    finally:
        product.close()

"""End-to-end classification (issue 19): a client from the exported config, `serve`
with its reconcile loop, and classes blocked per peer through the API."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from tests import captures
from tests.netns.product import Product
from tests.netns.test_e2e_core import open_tunnel
from tests.netns.topology import Client, Topology, wait_until

SSH_PORT = 2222
# A stand-in server in `inet` for the real ssh client to talk to: it sends a banner,
# reads what comes and hangs up. The client's banner is what gets classified.
_SSH_SINK = """
import socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
while True:
    conn, _ = srv.accept()
    with conn:
        conn.settimeout(2)
        conn.sendall(b"SSH-2.0-sink\\r\\n")
        try:
            conn.recv(4096)
        except OSError:
            pass
"""


def _ssh(client: Client, host: str) -> str:
    """What the real ssh client says when its connection ends."""
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
            "-p", str(SSH_PORT), f"nobody@{host}", "true"]  # fmt: skip
    return client.ns.run(argv, check=False, timeout=20).stderr


def _queue(product: Product) -> int:
    return int(product.env.get("WIREWARDEN_CLASSIFY_QUEUE", "4077"))


def test_blocked_classes_fail_while_the_rest_works(topology: Topology, product: Product) -> None:
    topology.inet.popen(
        [sys.executable, "-c", _SSH_SINK, topology.inet_ip, str(SSH_PORT)],
        log_path=topology.log_path("ssh-sink.log"),
    )
    topology.inet.wait_listening(topology.inet_ip, SSH_PORT)
    tunnel = open_tunnel(topology, product, address="10.78.0.1/24")
    client, web = tunnel.client, f"http://{topology.inet_ip}/"
    peer = f"/peers/{tunnel.peer['id']}"
    assert client.http_get(web) == topology.inet_http_body
    assert "reset" not in _ssh(client, topology.inet_ip)
    # Nothing blocked anywhere: no reader runs (WIREWARDEN_CLASSIFY=auto).
    assert not _queue_bound(topology, product)

    got = product.api("PATCH", peer, {"block_apps": ["ssh"]})
    assert got["block_apps"] == ["ssh"]
    wait_until(lambda: _queue_bound(topology, product), timeout=20, what="the reader")
    said = _ssh(client, topology.inet_ip)
    assert "reset" in said.lower(), said
    assert client.http_get(web) == topology.inet_http_body

    # What the peer did, by class, as the kernel counted it: its HTTP fetch (the page is
    # a few hundred bytes each way) and its refused ssh banner.
    def classes() -> dict[str, int]:
        shown = product.api("GET", f"{peer}/apps")
        return {c["app"]: c["bytes"] for c in shown["classes"]}

    wait_until(lambda: classes().get("http", 0) > 200, timeout=10, what="http counted")
    assert set(classes()) <= {"http", "ssh", "other"}, classes()
    # Each connection once: the fetches above were separate TCP connections.
    shown = product.api("GET", f"{peer}/apps")["classes"]
    flows = {c["app"]: c["flows"] for c in shown}
    assert 1 <= flows["http"] <= 4, shown

    product.api("PATCH", peer, {"block_apps": ["http"]})
    wait_until(lambda: client.http_get(web, timeout=3) is None, timeout=20, what="HTTP refused")
    assert "reset" not in _ssh(client, topology.inet_ip)

    product.api("PATCH", peer, {"block_apps": []})
    wait_until(
        lambda: client.http_get(web, timeout=3) == topology.inet_http_body,
        timeout=20,
        what="HTTP back",
    )
    wait_until(lambda: not _queue_bound(topology, product), timeout=20, what="the reader gone")


def _queue_bound(topology: Topology, product: Product) -> bool:
    queue = _queue(product)
    out = topology.server.run(["cat", "/proc/net/netfilter/nfnetlink_queue"]).stdout
    return any(line.split()[:1] == [str(queue)] for line in out.splitlines())


BT_PORT, OTHER_PORT = 6881, 6882
# Peers in `inet` for the client to talk to: each connection is answered with what it
# sent first, so a client knows its bytes got through.
_ECHO = """
import socket, sys, threading
def serve(port):
    srv = socket.create_server((sys.argv[1], port))
    while True:
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(3)
            try:
                conn.sendall(conn.recv(4096))
            except OSError:
                pass
for port in sys.argv[2:]:
    threading.Thread(target=serve, args=(int(port),), daemon=True).start()
threading.Event().wait()
"""
# The client's side: send, and say what came back ("echoed", "reset", "nothing").
_SEND = """
import socket, sys
data = bytes.fromhex(sys.argv[3])
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4) as s:
        s.sendall(data)
        got = s.recv(4096)
    print("echoed" if got == data else "nothing")
except (ConnectionResetError, ConnectionRefusedError):
    print("reset")  # an RST: to the data, or to the connection's SYN
except OSError:
    print("nothing")
"""
HANDSHAKE = b"\x13BitTorrent protocol" + bytes(8) + bytes(range(20)) + b"-qB4630-abcdefghijkl"
# What an encrypted (MSE) BitTorrent connection opens with: 96 bytes of a DH key, to the
# classifier nothing it knows.
ENCRYPTED = bytes((i * 97 + 13) % 256 for i in range(96))


def _send(client: Client, host: str, port: int, data: bytes) -> str:
    argv = [sys.executable, "-c", _SEND, host, str(port), data.hex()]
    return client.ns.run(argv, check=False, timeout=20).stdout.strip()


def test_a_bittorrent_peer_stays_blocked_whatever_its_later_flows_look_like(
    topology: Topology, product: Product
) -> None:
    """nDPI's BitTorrent cache, in the kernel: once a peer's flow to a remote was named
    BitTorrent, its new flows to that remote's port are BitTorrent from their first
    packet, so an encrypted handshake that names nothing is refused too; another port of
    the same host is not."""
    inet = topology.inet_ip
    topology.inet.popen(
        [sys.executable, "-c", _ECHO, inet, str(BT_PORT), str(OTHER_PORT)],
        log_path=topology.log_path("bt-peers.log"),
    )
    topology.inet.wait_listening(inet, OTHER_PORT)
    tunnel = open_tunnel(topology, product, address="10.79.0.1/24")
    client, peer = tunnel.client, f"/peers/{tunnel.peer['id']}"
    # Unseen, an encrypted handshake is "other" and passes.
    assert _send(client, inet, BT_PORT, ENCRYPTED) == "echoed"
    product.api("PATCH", peer, {"block_apps": ["bittorrent"]})
    wait_until(lambda: _queue_bound(topology, product), timeout=20, what="the reader")
    assert _send(client, inet, BT_PORT, HANDSHAKE) == "reset"
    # Now the remote is a known BitTorrent peer: the encrypted handshake fails as well.
    assert _send(client, inet, BT_PORT, ENCRYPTED) == "reset"
    assert _send(client, inet, OTHER_PORT, ENCRYPTED) == "echoed"
    remembered = topology.server.run(["nft", "list", "set", "inet", "wirewarden", "bt_peers4"])
    assert f"{inet} . {BT_PORT}" in remembered.stdout, remembered.stdout
    # Unblocked, the remembered peer is reachable again (remembered as a class, not a wall)
    # and what passes now counts as BitTorrent, connection and bytes, not as "other".
    product.api("PATCH", peer, {"block_apps": []})
    wait_until(
        lambda: _send(client, inet, BT_PORT, ENCRYPTED) == "echoed",
        timeout=20,
        what="BitTorrent allowed again",
    )
    shown = {c["app"]: c for c in product.api("GET", f"{peer}/apps")["classes"]}
    assert shown["bittorrent"]["flows"] >= 1 and shown["bittorrent"]["bytes"] > 2 * 96, shown


TLS_PORT = 8443


def test_the_server_names_of_a_clients_connections_show_when_kept(topology: Topology) -> None:
    """WIREWARDEN_CLASSIFY_NAMES=true: the names a client's HTTPS (SNI) and HTTP (Host)
    connections carried show on its `/apps`, with nothing blocked (keeping names runs the
    classifier); a name the client made up is kept as it said it, lower-cased."""
    env = {"WIREWARDEN_CLASSIFY_NAMES": "true", "WIREWARDEN_METRICS_PERIOD": "2"}
    product = Product(topology, env=env)
    try:
        product.start()
        topology.inet.popen(
            [sys.executable, "-c", _ECHO, topology.inet_ip, str(TLS_PORT)],
            log_path=topology.log_path("tls-echo.log"),
        )
        topology.inet.wait_listening(topology.inet_ip, TLS_PORT)
        tunnel = open_tunnel(topology, product, address="10.79.0.1/24")
        client, peer = tunnel.client, f"/peers/{tunnel.peer['id']}"
        wait_until(lambda: _queue_bound(topology, product), timeout=20, what="the reader")

        def names() -> set[tuple[str, str]]:
            # Each round opens new connections: a name is read from a flow's first packets.
            resolve = f"Shop.Example.Test:{TLS_PORT}:{topology.inet_ip}"
            https = ["curl", "-sk", "--max-time", "3", "--resolve", resolve]
            client.ns.run([*https, f"https://Shop.Example.Test:{TLS_PORT}/"], check=False)
            host = ["curl", "-s", "--max-time", "3", "-H", "Host: blog.example.test"]
            client.ns.run([*host, f"http://{topology.inet_ip}/"], check=False)
            shown = product.api("GET", f"{peer}/apps")["names"] or []
            return {(n["app"], n["name"]) for n in shown}

        wait_until(
            lambda: {("tls", "shop.example.test"), ("http", "blog.example.test")} <= names(),
            timeout=40,
            interval=1,
            what=f"the names on /apps:\n{product.log()[-3000:]}",
        )
        assert client.http_get(f"http://{topology.inet_ip}/") == topology.inet_http_body
    finally:
        product.close()


TRACKER_PORT, SEED_PORT = 6969, 6881
# The tracker in `inet`: every announce is answered with the seeder (compact, BEP 23) and
# noted, with the address it came from, in a file.
_TRACKER = """
import http.server, socket, sys
ip, port, seed, seen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
peers = socket.inet_aton(ip) + seed.to_bytes(2, "big")
answer = b"d8:intervali60e5:peers6:" + peers + b"e"
class Announce(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(seen, "a") as out:
            out.write(self.client_address[0] + "\\n")
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((ip, port), Announce).serve_forever()
"""
ARIA2 = ["aria2c", "--enable-dht=false", "--bt-enable-lpd=false",
         "--enable-peer-exchange=false", "--quiet=true"]  # fmt: skip


def _torrent(tmp_path: Path, tracker: str) -> tuple[Path, bytes]:
    """A 512 KiB file in a torrent announced to `tracker`: (the .torrent, the content)."""
    content = os.urandom(512 * 1024)
    piece = 64 * 1024
    hashes = b"".join(
        hashlib.sha1(content[i : i + piece]).digest()  # noqa: S324 - BitTorrent v1 is SHA-1
        for i in range(0, len(content), piece)
    )
    info = {"name": "film.bin", "length": len(content), "piece length": piece, "pieces": hashes}
    torrent = tmp_path / "film.torrent"
    torrent.write_bytes(captures.bencode({"announce": tracker, "info": info}))
    return torrent, content


# aria2c's default: an obfuscated (MSE) key exchange, then the peer wire in plain text.
# ENCRYPTED: RC4 for the whole connection, as privacy-minded clients are set up.
PLAIN_AFTER_MSE: list[str] = []
ENCRYPTED_ONLY = ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]


def _fetch(client: Client, torrent: Path, into: Path, content: bytes, crypto: list[str]) -> bool:
    """A real download with aria2c through the client's tunnel: whether the whole file
    came. It gives up after 10 s without a byte (no peer found, or none that answers)."""
    into.mkdir()
    argv = [*ARIA2, *crypto, f"--dir={into}", "--seed-time=0", "--bt-stop-timeout=10",
            "--listen-port=6891", str(torrent)]  # fmt: skip
    client.ns.run(argv, check=False, timeout=60)
    got = into / "film.bin"
    return got.exists() and got.read_bytes() == content and not (into / "film.bin.aria2").exists()


def test_a_real_bittorrent_download_is_named_and_blocked_by_its_announces(
    topology: Topology, product: Product, tmp_path: Path
) -> None:
    """aria2c fetches a file from an aria2c seeder in `inet` found through a tracker.
    With aria2c's defaults the peer wire follows its obfuscated key exchange in plain
    text: the transfer itself is named BitTorrent. Blocked, a client that encrypts
    everything (nothing in its peer connection names it) still gets nothing: its
    announce is BitTorrent by its request and never reaches the tracker, so it learns
    no peer. Unblocked, it downloads again."""
    inet = topology.inet_ip
    torrent, content = _torrent(tmp_path, f"http://{inet}:{TRACKER_PORT}/announce")
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "film.bin").write_bytes(content)
    announced = tmp_path / "announces"
    announced.touch()
    topology.inet.popen(
        [sys.executable, "-c", _TRACKER, inet, str(TRACKER_PORT), str(SEED_PORT), str(announced)],
        log_path=topology.log_path("tracker.log"),
    )
    topology.inet.popen(
        [*ARIA2, f"--dir={seed}", "--seed-ratio=0.0", "--check-integrity=true",
         f"--listen-port={SEED_PORT}", str(torrent)],
        log_path=topology.log_path("seeder.log"),
    )  # fmt: skip
    topology.inet.wait_listening(inet, TRACKER_PORT)
    topology.inet.wait_listening("0.0.0.0", SEED_PORT, timeout=20)
    tunnel = open_tunnel(topology, product, address="10.77.0.1/24")
    client, peer = tunnel.client, f"/peers/{tunnel.peer['id']}"
    # Something blocked (not BitTorrent) so that the peer's flows are classified.
    product.api("PATCH", peer, {"block_apps": ["ssh"]})
    wait_until(lambda: _queue_bound(topology, product), timeout=20, what="the reader")

    assert _fetch(client, torrent, tmp_path / "first", content, PLAIN_AFTER_MSE)
    shown = {c["app"]: c for c in product.api("GET", f"{peer}/apps")["classes"]}
    # The announce and the transfer (the file's bytes) were BitTorrent.
    assert shown["bittorrent"]["flows"] >= 2, shown
    assert shown["bittorrent"]["bytes"] > len(content), shown

    product.api("PATCH", peer, {"block_apps": ["ssh", "bittorrent"]})
    before = announced.read_text().count("\n")
    assert not _fetch(client, torrent, tmp_path / "blocked", content, ENCRYPTED_ONLY)
    assert announced.read_text().count("\n") == before  # no announce got through

    product.api("PATCH", peer, {"block_apps": ["ssh"]})
    assert _fetch(client, torrent, tmp_path / "again", content, ENCRYPTED_ONLY)
    assert announced.read_text().count("\n") > before

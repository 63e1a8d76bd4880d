"""First packets of real clients, caught on loopback for the classifier's tests.

Each helper runs the real program (curl, openssl, ssh, aria2c, aioquic's client)
against a listener of ours that keeps what the client sends first and hangs up: the
bytes are the client's, not written by hand.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_WAIT = 10.0


@contextmanager
def tcp_catcher(
    expect: int = 1, connections: int = 1
) -> Iterator[tuple[int, Callable[[], list[bytes]]]]:
    """A loopback TCP listener: (its port, a function returning what each of the first
    `connections` clients sent before a pause, or `expect` bytes at least)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(_WAIT)
    caught: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        try:
            for _ in range(connections):
                conn, _ = server.accept()
                with conn:
                    caught.append(_first_bytes(conn, expect))
        except OSError:
            pass
        done.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def result() -> list[bytes]:
        done.wait(_WAIT)
        return list(caught)

    try:
        yield server.getsockname()[1], result
    finally:
        server.close()
        thread.join(_WAIT)


def _first_bytes(conn: socket.socket, expect: int) -> bytes:
    conn.settimeout(1.0)
    data = b""
    try:
        while len(data) < 65536:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) >= expect and not _more_waiting(conn):
                break
    except OSError:
        pass
    return data


def _more_waiting(conn: socket.socket) -> bool:
    conn.settimeout(0.3)
    try:
        return bool(conn.recv(1, socket.MSG_PEEK))
    except OSError:
        return False
    finally:
        conn.settimeout(1.0)


def _run(argv: list[str]) -> None:
    subprocess.run(argv, capture_output=True, timeout=_WAIT, check=False, stdin=subprocess.DEVNULL)


def curl_https(name: str) -> bytes:
    with tcp_catcher() as (port, caught):
        url = f"https://{name}:{port}/"
        _run(["curl", "-sk", "--max-time", "3", "--resolve", f"{name}:{port}:127.0.0.1", url])
        return (caught() or [b""])[0]


def openssl_hello(name: str) -> bytes:
    with tcp_catcher() as (port, caught):
        _run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", name])
        return (caught() or [b""])[0]


def curl_http(name: str) -> bytes:
    with tcp_catcher() as (port, caught):
        url = f"http://{name}:{port}/index.html"
        _run(["curl", "-s", "--max-time", "3", "--resolve", f"{name}:{port}:127.0.0.1", url])
        return (caught() or [b""])[0]


def ssh_banner() -> bytes:
    with tcp_catcher() as (port, caught):
        _run(
            [
                "ssh",
                "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null",
                "-o", "ConnectTimeout=3",
                "-p", str(port),
                "nobody@127.0.0.1",
                "true",
            ]
        )  # fmt: skip
        return (caught() or [b""])[0]


def quic_initial(name: str) -> bytes:
    """aioquic's client, asked to connect: the datagram it would send first."""
    import time

    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    config = QuicConfiguration(is_client=True, server_name=name, alpn_protocols=["h3"])
    connection = QuicConnection(configuration=config)
    now = time.time()
    connection.connect(("127.0.0.1", 4433), now=now)
    return connection.datagrams_to_send(now=now)[0][0]


def bencode(value: object) -> bytes:
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, str):
        return bencode(value.encode())
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(value)


def aria2_first_packets(workdir: Path) -> tuple[list[bytes], bytes, bytes]:
    """aria2c downloading a torrent whose tiny tracker (served here) names our peer
    listener, with our UDP socket as its DHT entry point: (what it sent on each of its
    first two connections to the peer, the first DHT message it sent, its first announce
    to the tracker as it came: request line and headers)."""
    content = b"wirewarden" * 100
    info = {
        "name": "sample.bin",
        "length": len(content),
        "piece length": 16384,
        "pieces": hashlib.sha1(content).digest(),  # noqa: S324 - BitTorrent v1 is SHA-1
    }
    dht = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dht.bind(("127.0.0.1", 0))
    dht.settimeout(_WAIT)
    # aria2c opens with an obfuscated (MSE) handshake, and falls back to the plain one
    # when the peer hangs up: the second connection carries the plain handshake.
    announces: list[bytes] = []
    with (
        tcp_catcher(expect=68, connections=2) as (peer_port, caught),
        _tracker(peer_port, announces) as tracker,
    ):
        torrent = workdir / "sample.torrent"
        torrent.write_bytes(bencode({"announce": tracker, "info": info}))
        child = subprocess.Popen(
            [
                "aria2c",
                f"--dir={workdir}",
                "--enable-dht=true",
                f"--dht-entry-point=127.0.0.1:{dht.getsockname()[1]}",
                f"--dht-file-path={workdir / 'dht.dat'}",
                f"--dht-listen-port={_free_port(socket.SOCK_DGRAM)}",
                f"--listen-port={_free_port(socket.SOCK_STREAM)}",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--seed-time=0",
                "--quiet=true",
                str(torrent),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            handshakes = caught()
            try:
                datagram = dht.recv(65536)
            except OSError:
                datagram = b""
        finally:
            child.kill()
            child.wait(_WAIT)
            dht.close()
    return handshakes, datagram, announces[0] if announces else b""


def aria2_udp_announce(workdir: Path) -> bytes:
    """The first datagram aria2c sends to a UDP tracker (BEP 15) of a torrent: ours, a
    socket that answers nothing. (aria2 sends UDP announces from its DHT socket: without
    DHT it skips UDP trackers.)"""
    tracker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tracker.bind(("127.0.0.1", 0))
    tracker.settimeout(_WAIT)
    info = {"name": "udp.bin", "length": 10, "piece length": 16384, "pieces": bytes(20)}
    torrent = workdir / "udp.torrent"
    announce = f"udp://127.0.0.1:{tracker.getsockname()[1]}/announce"
    torrent.write_bytes(bencode({"announce": announce, "info": info}))
    child = subprocess.Popen(
        ["aria2c", f"--dir={workdir}", "--enable-dht=true",
         f"--dht-listen-port={_free_port(socket.SOCK_DGRAM)}",
         f"--dht-file-path={workdir / 'dht.dat'}", "--bt-enable-lpd=false",
         f"--listen-port={_free_port(socket.SOCK_STREAM)}", "--quiet=true", str(torrent)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        return tracker.recv(65536)
    except OSError:
        return b""
    finally:
        child.kill()
        child.wait(_WAIT)
        tracker.close()


def _free_port(kind: int) -> int:
    # aria2c takes no port 0: ask the kernel for a free one (1024 and above).
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _tracker(peer_port: int, announces: list[bytes]) -> Iterator[str]:
    answer = bencode(
        {"interval": 60, "peers": socket.inet_aton("127.0.0.1") + peer_port.to_bytes(2, "big")}
    )

    class Announce(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            # The request as it came: its line and its headers in order, CRLF-ended.
            fields = b"".join(f"{k}: {v}\r\n".encode() for k, v in self.headers.items())
            announces.append(self.raw_requestline + fields + b"\r\n")
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Announce)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/announce"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(_WAIT)

"""A fake authoritative DNS server for tests and benches (dnspython + asyncio).

Every name answers: A 198.18.0.<n> / AAAA 2001:db8::<n> where n is derived from the
name (so answers differ per name), TTL 300; names starting with `nx` are NXDOMAIN
with an SOA (negative TTL 60); names starting with `big` get enough TXT records to
overflow 512 bytes (TC over UDP, whole over TCP). Counts the questions it gets.
With `--root`, it also answers as the root server a recursive resolver primes from
(`. NS` is `a.root-servers.net.`, whose address is the fake's own), so root hints can
point a real Unbound at it: every other name is then answered authoritatively from here.

Run: python -m tests.dnsfake HOST PORT [--log FILE] [--root]
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import zlib

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL = 300
ROOT_NS = "a.root-servers.net."


def address_for(name: str) -> tuple[str, str]:
    n = zlib.crc32(name.lower().rstrip(".").encode()) % 250 + 1
    return f"198.18.0.{n}", f"2001:db8::{n:x}"


def answer(wire: bytes, root: str | None = None) -> dns.message.Message | None:
    """The response to a query; with `root` (the fake's own address) it is the root."""
    try:
        query = dns.message.from_wire(wire)
    except Exception:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response
    q = query.question[0]
    name = q.name.to_text().lower()
    if name.startswith("nx"):
        response.set_rcode(dns.rcode.NXDOMAIN)
        soa = dns.rrset.from_text(
            q.name.parent(), 600, "IN", "SOA", "ns. host. 1 3600 600 86400 60"
        )
        response.authority.append(soa)
        return response
    if root is not None and name in (".", ROOT_NS):
        _root_answer(response, root)
        return response
    v4, v6 = address_for(name)
    if name.startswith("big") and q.rdtype == dns.rdatatype.TXT:
        texts = [f'"{"x" * 200} {i}"' for i in range(6)]
        response.answer.append(dns.rrset.from_text(q.name, TTL, "IN", "TXT", *texts))
    elif q.rdtype == dns.rdatatype.A:
        response.answer.append(dns.rrset.from_text(q.name, TTL, "IN", "A", v4))
    elif q.rdtype == dns.rdatatype.AAAA:
        response.answer.append(dns.rrset.from_text(q.name, TTL, "IN", "AAAA", v6))
    return response


def root_hints(address: str) -> str:
    """A root hints file naming the fake (run with `--root`) at `address` as the root."""
    kind = "AAAA" if ":" in address else "A"
    return f". 3600000 NS {ROOT_NS}\n{ROOT_NS} 3600000 {kind} {address}\n"


def _root_answer(response: dns.message.Message, root: str) -> None:
    q = response.question[0]
    glue = dns.rrset.from_text(ROOT_NS, TTL, "IN", "AAAA" if ":" in root else "A", root)
    if q.name == dns.name.root and q.rdtype == dns.rdatatype.NS:
        response.answer.append(dns.rrset.from_text(".", TTL, "IN", "NS", ROOT_NS))
        response.additional.append(glue)
    elif q.name != dns.name.root and q.rdtype == glue.rdtype:
        response.answer.append(glue)


def udp_wire(response: dns.message.Message) -> bytes:
    try:
        return response.to_wire(max_size=512)
    except dns.exception.TooBig:
        response.answer.clear()
        response.flags |= dns.flags.TC
        return response.to_wire()


class Udp(asyncio.DatagramProtocol):
    def __init__(self, counter: list[int], root: str | None = None) -> None:
        self.counter, self.root = counter, root

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.counter[0] += 1
        response = answer(data, self.root)
        if response is not None:
            self.transport.sendto(udp_wire(response), addr)


async def tcp_client(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    counter: list[int],
    root: str | None = None,
) -> None:
    try:
        while True:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            data = await reader.readexactly(size)
            counter[0] += 1
            response = answer(data, root)
            if response is None:
                break
            out = response.to_wire(max_size=65535)
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int, log: str | None, root: bool = False) -> None:
    counter = [0]
    me = host if root else None
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: Udp(counter, me), local_addr=(host, port))
    await asyncio.start_server(lambda r, w: tcp_client(r, w, counter, me), host, port)
    print(f"fake DNS on {host}:{port}", flush=True)
    while True:
        await asyncio.sleep(0.5)
        if log:
            with open(log, "w") as out:
                out.write(str(counter[0]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--log")
    parser.add_argument("--root", action="store_true", help="also be the root server")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port, args.log, args.root))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()

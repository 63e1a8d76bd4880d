"""Which packets go to the classifier and how a verdict is remembered by the kernel.

The queue rule is iptables-nft's NFQUEUE target: this machine's kernel has the netlink
queue but not nftables' `queue` expression (docs/classify.md). Only a flow's first
packets are queued (connbytes), never one that already has a verdict in its conntrack
mark, and `--queue-bypass` lets packets through when no classifier listens.
"""

from __future__ import annotations

from dataclasses import dataclass

from wirewarden.domain.classify.flows import MAX_PAYLOADS
from wirewarden.domain.classify.verdict import APPS, App

# The conntrack mark's bits that hold the class: bit 24 says "decided", the byte below
# it the class's number. Other bits stay free for whoever else marks.
DECIDED = 0x0100_0000
CLASS_MASK = 0x00FF_0000
MARK_MASK = DECIDED | CLASS_MASK
CHAIN = "WIREWARDEN-CLASSIFY"
TABLE = "mangle"
# Packets of both directions count: a flow's first MAX_PAYLOADS payloads of its peer's
# side and the handshake's packets fit in this many.
QUEUED_PACKETS = MAX_PAYLOADS + 3
# xt_u32: true when four bytes can be read where the TCP payload starts (IP header
# length, then the TCP data offset). A handshake packet or a bare ACK carries nothing a
# parser reads, so it never leaves the kernel: a TCP flow costs the reader one packet,
# not three, and its SYN waits for no one. No parser decides on fewer than 4 bytes.
TCP_PAYLOAD = "0>>22&0x3C@12>>26&0x3C@0=0:0xFFFFFFFF"


def mark_of(app: App) -> int:
    return DECIDED | (APPS.index(app) + 1) << 16


def app_of(mark: int) -> App | None:
    if not mark & DECIDED:
        return None
    number = (mark & CLASS_MASK) >> 16
    return APPS[number - 1] if 1 <= number <= len(APPS) else None


@dataclass(frozen=True)
class Steering:
    queue: int
    interfaces: tuple[str, ...]


def rules(steering: Steering) -> list[list[str]]:
    """The chain's rules as iptables argv tails (after `-A CHAIN`), in order. The
    classifier answers a decided packet with NF_REPEAT and the class in its mark, so the
    packet walks the chain again and the first rule keeps the verdict in the flow's
    conntrack mark; from then on the second rule lets the flow pass unqueued. Only what
    enters from a listed interface (the peers' side) is queued, and of TCP only packets
    that carry a payload."""
    hex_mask = f"0x{MARK_MASK:x}"
    decided = f"0x{DECIDED:x}/0x{DECIDED:x}"
    out: list[list[str]] = [
        # A verdict the classifier set on this packet's mark goes into the flow's.
        ["-m", "mark", "--mark", decided, "-j", "CONNMARK", "--save-mark",
         "--mask", hex_mask],
        ["-m", "connmark", "--mark", decided, "-j", "RETURN"],
    ]  # fmt: skip
    for interface in steering.interfaces:
        for proto, payload in (("tcp", ["-m", "u32", "--u32", TCP_PAYLOAD]), ("udp", [])):
            out.append(
                ["-i", interface, "-p", proto, "-m", "connbytes",
                 "--connbytes", f"1:{QUEUED_PACKETS}", "--connbytes-dir", "both",
                 "--connbytes-mode", "packets", *payload, "-j", "NFQUEUE",
                 "--queue-num", str(steering.queue), "--queue-bypass"]
            )  # fmt: skip
    return out

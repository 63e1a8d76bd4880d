"""The classifier's queue reader: a child process that reads the first packets of new
flows from an NFQUEUE, names each flow (domain.classify) and hands the verdict back to
the kernel in the packet's mark (steering.py keeps it in the conntrack mark).

Run as `python -m wirewarden.dataplane.nfqueue --queue N [--names SOCKET]`. It holds no
state worth keeping: killed, the queue rule's bypass lets traffic through until it is
back. With `--names`, each decided flow that named its server (TLS/QUIC SNI, HTTP Host)
is told to the process that keeps names (namesink.py), one datagram each, never waited
for: a full or absent receiver loses the name, not the packet's time.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
from collections import OrderedDict
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from wirewarden.domain.classify.flows import classify
from wirewarden.domain.classify.names import NAMED, Seen, clean, encode
from wirewarden.domain.classify.packets import Flow, parse
from wirewarden.domain.classify.steering import mark_of
from wirewarden.domain.classify.verdict import App

if TYPE_CHECKING:
    from netfilterqueue import Packet

# Undecided flows kept at once; the oldest is forgotten first (it then ends as
# `other` or unqueued: the kernel stops queueing after the first packets anyway).
MAX_FLOWS = 65536


class Classifier:
    """Flow table and verdicts, apart from the queue so it can be driven by tests."""

    def __init__(
        self, max_flows: int = MAX_FLOWS, named: Callable[[Seen], None] | None = None
    ) -> None:
        self._flows: OrderedDict[Flow, list[bytes]] = OrderedDict()
        self._max = max_flows
        self.decided: dict[App, int] = {}
        self.named = named

    def verdict(self, raw: bytes) -> int | None:
        """The mark to repeat the packet with, or None to let it pass undecided."""
        packet = parse(raw)
        if packet is None:
            return None
        key = _both_ways(packet.flow)
        payloads = self._flows.pop(key, [])
        if packet.payload:
            payloads.append(packet.payload)
        found = classify(packet.flow.proto, payloads)
        if found.app is None:
            self._flows[key] = payloads
            if len(self._flows) > self._max:
                self._flows.popitem(last=False)
            return None
        self.decided[found.app] = self.decided.get(found.app, 0) + 1
        if self.named is not None and found.app in NAMED:  # only when names are kept
            name = clean(found.name)
            if name is not None:
                flow = packet.flow
                self.named(Seen(flow.source, flow.destination, found.app, name))
        return mark_of(found.app)


def _both_ways(flow: Flow) -> Flow:
    """One key for both directions of a flow."""
    here = (flow.source, flow.source_port)
    there = (flow.destination, flow.destination_port)
    if here <= there:
        return flow
    return Flow(flow.proto, flow.destination, flow.destination_port, flow.source, flow.source_port)


def teller(path: str) -> Callable[[Seen], None]:
    """Sends each name to the socket at `path` without waiting."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)

    def tell(seen: Seen) -> None:
        with contextlib.suppress(OSError):  # absent, full or refused: the name is lost
            sock.sendto(encode(seen), path)

    return tell


def serve(queue: int, names: str | None = None) -> None:
    from netfilterqueue import NetfilterQueue

    classifier = Classifier(named=teller(names) if names else None)

    def handle(packet: Packet) -> None:
        mark = classifier.verdict(packet.get_payload())
        if mark is None:
            packet.accept()
        else:
            packet.set_mark(mark)
            packet.repeat()

    nfqueue = NetfilterQueue()
    # Only what the parsers read is copied out of the kernel: the first 4 KiB.
    nfqueue.bind(queue, handle, max_len=4096, range=4096)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        nfqueue.run()
    finally:
        nfqueue.unbind()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--names", help="the socket server names are told to")
    args = parser.parse_args()
    serve(args.queue, args.names)


if __name__ == "__main__":
    main()

"""The classifier's queue reader: a child process that reads the first packets of new
flows from an NFQUEUE, names each flow (domain.classify) and hands the verdict back to
the kernel in the packet's mark (steering.py keeps it in the conntrack mark).

Run as `python -m wirewarden.dataplane.nfqueue --queue N`. It holds no state worth
keeping: killed, the queue rule's bypass lets traffic through until it is back.
"""

from __future__ import annotations

import argparse
import signal
from collections import OrderedDict
from types import FrameType
from typing import TYPE_CHECKING

from wirewarden.domain.classify.flows import classify
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

    def __init__(self, max_flows: int = MAX_FLOWS) -> None:
        self._flows: OrderedDict[Flow, list[bytes]] = OrderedDict()
        self._max = max_flows
        self.decided: dict[App, int] = {}

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
        return mark_of(found.app)


def _both_ways(flow: Flow) -> Flow:
    """One key for both directions of a flow."""
    here = (flow.source, flow.source_port)
    there = (flow.destination, flow.destination_port)
    if here <= there:
        return flow
    return Flow(flow.proto, flow.destination, flow.destination_port, flow.source, flow.source_port)


def serve(queue: int) -> None:
    from netfilterqueue import NetfilterQueue

    classifier = Classifier()

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
    serve(parser.parse_args().queue)


if __name__ == "__main__":
    main()

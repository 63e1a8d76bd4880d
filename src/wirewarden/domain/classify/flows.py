"""One verdict from a flow's first payloads, whichever side sent them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from wirewarden.domain.classify import bittorrent, plain, quic, tls
from wirewarden.domain.classify.verdict import UNDECIDED, Verdict

Proto = Literal["tcp", "udp"]

# nDPI gives up on most protocols within a handful of packets; so do we: a flow nothing
# claimed by its 8th payload is `other` and leaves the queue for good.
MAX_PAYLOADS = 8


def classify(proto: Proto, payloads: Sequence[bytes]) -> Verdict:
    """`payloads`: the flow's non-empty payloads so far, in arrival order."""
    seen = [p for p in payloads if p]
    if not seen:
        return UNDECIDED
    verdict = _tcp(seen) if proto == "tcp" else _udp(seen)
    if verdict.decided or len(seen) < MAX_PAYLOADS:
        return verdict
    return Verdict("other")


def _tcp(payloads: list[bytes]) -> Verdict:
    for payload in payloads:
        if bittorrent.is_handshake(payload):
            return Verdict("bittorrent")
        if plain.is_ssh_banner(payload):
            return Verdict("ssh")
        if plain.is_http_request(payload):
            host = plain.http_host(payload)
            if bittorrent.is_tracker_request(payload):
                return Verdict("bittorrent", host)
            return Verdict("http", host)
    return _tls(payloads[0] if len(payloads) == 1 else b"".join(payloads))


def _tls(stream: bytes) -> Verdict:
    if not tls.looks_like_record(stream):
        return UNDECIDED
    try:
        return Verdict("tls", tls.client_hello_name(tls.record_payload(stream)))
    except tls.Truncated:
        return UNDECIDED  # the hello continues in the next segment
    except tls.Malformed:
        return Verdict("other")


def _udp(payloads: list[bytes]) -> Verdict:
    for payload in payloads:
        if (
            bittorrent.is_dht(payload)
            or bittorrent.is_utp_syn(payload)
            or bittorrent.is_udp_tracker_connect(payload)
        ):
            return Verdict("bittorrent")
        if quic.is_initial(payload):
            return Verdict("quic", quic.initial_server_name(payload))
    return UNDECIDED

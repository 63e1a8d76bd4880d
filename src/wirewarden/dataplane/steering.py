"""Putting the classifier's queue rules in the kernel (iptables-nft: see
domain/classify/steering.py for why not nftables) and taking them out."""

from __future__ import annotations

from pathlib import Path

from wirewarden.dataplane.run import run
from wirewarden.domain.classify.steering import CHAIN, TABLE, Steering, rules

_JUMP = ["FORWARD", "-j", CHAIN]


def apply(steering: Steering) -> None:
    """The chain's rules replaced in one iptables-restore transaction, then hooked into
    FORWARD once."""
    lines = [f"*{TABLE}", f":{CHAIN} - [0:0]"]  # declaring the chain flushes it
    lines += [" ".join(["-A", CHAIN, *rule]) for rule in rules(steering)]
    lines.append("COMMIT")
    run(["iptables-restore", "--noflush"], stdin="\n".join(lines) + "\n")
    if run(["iptables", "-t", TABLE, "-C", *_JUMP], check=False).returncode != 0:
        run(["iptables", "-t", TABLE, "-I", *_JUMP])


def remove() -> None:
    while run(["iptables", "-t", TABLE, "-D", *_JUMP], check=False).returncode == 0:
        pass
    run(["iptables", "-t", TABLE, "-F", CHAIN], check=False)
    run(["iptables", "-t", TABLE, "-X", CHAIN], check=False)


def queue_bound(queue: int) -> bool:
    """A reader is bound to `queue` in this network namespace."""
    try:
        lines = Path("/proc/net/netfilter/nfnetlink_queue").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[:1] == [str(queue)] for line in lines)

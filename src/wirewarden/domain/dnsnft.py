"""The DNS part of our nftables table (anti-bypass), as a firewall Section: port 53 from
peers is redirected (DNAT) to the gateway of the interface they came in on (the map
dns4/dns6 of firewall.interface_elements), where our
resolver listens; DoT (853) and known DoH endpoints on 443 are refused. Peers whose
policy turns anti-bypass off are exempt. Pure text; firewall.compose places it."""

from __future__ import annotations

import ipaddress

from wirewarden.domain.dnsstate import DnsGuard
from wirewarden.domain.firewall import IFACES, Section

REDIRECT, REFUSE = "dns_redirect", "dns_refuse"


def _split(addresses: tuple[str, ...]) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for text in sorted(set(addresses)):
        net = ipaddress.ip_network(text, strict=False)
        (v6 if net.version == 6 else v4).append(str(net))
    return v4, v6


def _set(name: str, kind: str, elements: list[str]) -> str:
    items = f" elements = {{ {', '.join(elements)} }};" if elements else ""
    return f"set {name} {{ type {kind}; flags interval;{items} }}"


def _chain(name: str, rules: list[str]) -> str:
    return "\n".join([f"\tchain {name} {{", *(f"\t\t{r}" for r in rules), "\t}"])


# Port 53 from a peer goes to its own interface's gateway: one map lookup (dns4/dns6, kept
# by firewall.interface_elements), whatever the number of interfaces.
_REDIRECTS = [
    f"iifname @{IFACES} meta nfproto {nfproto} {proto} dport 53 dnat {fam} to iifname map @dns{n}"
    for nfproto, fam, n in (("ipv4", "ip", "4"), ("ipv6", "ip6", "6"))
    for proto in ("udp", "tcp")
]


_EXEMPT = ["ip saddr @dns_exempt4 return", "ip6 saddr @dns_exempt6 return"]
_REFUSALS = [
    "tcp dport 853 reject with tcp reset",
    "udp dport 853 reject",
    "ip daddr @doh4 tcp dport 443 reject with tcp reset",
    "ip daddr @doh4 udp dport 443 reject",
    "ip6 daddr @doh6 tcp dport 443 reject with tcp reset",
    "ip6 daddr @doh6 udp dport 443 reject",
]


def dns_section(guard: DnsGuard) -> Section:
    """Sets, two chains, and the jumps to them from the prerouting and forward chains."""
    ex4, ex6 = _split(guard.exempt)
    doh4, doh6 = _split(guard.doh)
    declarations = (
        _set("dns_exempt4", "ipv4_addr", ex4),
        _set("dns_exempt6", "ipv6_addr", ex6),
        _set("doh4", "ipv4_addr", doh4),
        _set("doh6", "ipv6_addr", doh6),
        _chain(REDIRECT, [*_EXEMPT, *_REDIRECTS]),
        _chain(REFUSE, [*_EXEMPT, *_REFUSALS]),
    )
    rules = {
        "prerouting": (f"iifname @{IFACES} jump {REDIRECT}",),
        "forward": (f"iifname @{IFACES} jump {REFUSE}",),
    }
    return Section("dns", declarations, rules)

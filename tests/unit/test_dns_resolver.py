"""The resolver's decisions and its cache, with a scripted upstream (no sockets)."""

from __future__ import annotations

import asyncio
import ipaddress
import weakref

import dns.message
import dns.rcode
import dns.rrset
import pytest

from wirewarden.dns.cache import AnswerCache, CacheLimits
from wirewarden.dns.resolver import PolicyRuntime, QueryLog, Record, Resolver, Routing
from wirewarden.dns.upstream import Answer, UpstreamSet, parse_upstream, parse_upstreams
from wirewarden.domain import dnswire, firewall
from wirewarden.domain.dnsnft import dns_section
from wirewarden.domain.dnsrules import compile_policy
from wirewarden.domain.dnsstate import Client, DnsGuard
from wirewarden.domain.state import DesiredState, NatNetwork
from wirewarden.reconciler.plan import firewall_sections


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scripted(UpstreamSet):
    """Answers A 192.0.2.1 (TTL 300), NXDOMAIN for nx*, or nothing when down."""

    def __init__(self) -> None:
        super().__init__([])
        self.asked: list[str] = []
        self.down = False

    async def query(self, request: dns.message.Message) -> Answer | None:
        self.asked.append(request.question[0].name.to_text())
        if self.down:
            return None
        response = dns.message.make_response(request)
        name = request.question[0].name
        if name.to_text().startswith("nx"):
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(
                dns.rrset.from_text(name.parent(), 900, "IN", "SOA", "ns. h. 1 2 3 4 60")
            )
        else:
            response.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.1"))
        return Answer(response.to_wire(), "udp://192.0.2.53:53", 1.0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def resolver(clock: Clock) -> Resolver:
    cache = AnswerCache(CacheLimits(stale_seconds=600, stale_ttl=30), clock=clock)
    resolver = Resolver(Scripted(), cache, QueryLog())
    kids = compile_policy("kids", ["games.example"], [], "null-ip", True)
    default = compile_policy("default", ["ads.example"], [], "nxdomain", True)
    resolver.routing = Routing(
        clients={"10.8.0.2": Client(2, "laptop", "wg0", "kids")},
        policies={"kids": PolicyRuntime(kids), "default": PolicyRuntime(default)},
        networks=(),
    )
    return resolver


def ask(
    resolver: Resolver, name: str, ip: str = "10.8.0.2", rdtype: str = "A"
) -> dns.message.Message:
    wire = dns.message.make_query(name, rdtype).to_wire()
    out = resolver.handle(wire, ip, False)
    if not isinstance(out, bytes):
        assert out is not None
        out = asyncio.run(out)
    assert out is not None
    return dns.message.from_wire(out)


_LOGGED: weakref.WeakKeyDictionary[Resolver, list[Record]] = weakref.WeakKeyDictionary()


def statuses(resolver: Resolver) -> list[str]:
    """Every outcome logged so far, one per query, in time order (a counted record
    stands for `count` queries)."""
    logged = _LOGGED.setdefault(resolver, [])
    logged += resolver.log.take().records()
    logged.sort(key=lambda record: record[0])
    return [record[7] for record in logged for _ in range(record[12])]


def test_policy_by_source_address(resolver: Resolver) -> None:
    kids = ask(resolver, "games.example")
    assert kids.rcode() == dns.rcode.NOERROR and kids.answer[0][0].to_text() == "0.0.0.0"
    assert ask(resolver, "ads.example").rcode() == dns.rcode.NOERROR  # not blocked for kids
    resolver.routing.networks = (ipaddress.ip_network("10.8.0.0/24"),)
    assert ask(resolver, "ads.example", ip="10.8.0.9").rcode() == dns.rcode.NXDOMAIN
    assert ask(resolver, "x.example", ip="203.0.113.9").rcode() == dns.rcode.REFUSED


def test_second_query_is_a_cache_hit_with_decreasing_ttl(resolver: Resolver, clock: Clock) -> None:
    first = ask(resolver, "www.example")
    clock.now += 100
    second = ask(resolver, "WWW.example")
    assert first.answer[0].ttl == 300 and second.answer[0].ttl == 200
    assert str(second.question[0].name) == "WWW.example."
    assert statuses(resolver) == ["resolved", "cached"]
    assert resolver.upstreams.asked == ["www.example."]  # type: ignore[attr-defined]


def test_packet_cache_same_bytes_same_answer_but_the_id(resolver: Resolver, clock: Clock) -> None:
    """A repeated query (same source, same bytes after the id) is answered from the
    packet cache: within the same second of the entry's age only, and never across a
    change of routing (policies, clients)."""
    query = dns.message.make_query("www.example", "A")

    def asked(ident: int) -> dns.message.Message:
        query.id = ident
        out = resolver.handle(query.to_wire(), "10.8.0.2", False)
        if not isinstance(out, bytes):
            assert out is not None
            out = asyncio.run(out)
        assert out is not None
        return dns.message.from_wire(out)

    assert asked(1).answer[0].ttl == 300  # resolved upstream
    clock.now += 10.2
    second = asked(2)  # a cache hit through the full fast path, now kept as a packet
    assert len(resolver.routing.packets) == 1 and second.answer[0].ttl == 290
    clock.now += 0.5
    third = asked(3)  # the packet cache
    assert third.id == 3 and third.answer[0].ttl == 290
    assert third.to_wire()[2:] == second.to_wire()[2:]
    clock.now += 0.5  # the entry's age is now 11 s: the TTL changed, the packet is renewed
    assert asked(4).answer[0].ttl == 289
    assert asked(5).answer[0].ttl == 289
    clock.now += 300  # past the entry's TTL: asked upstream again, not from the packet
    assert asked(6).answer[0].ttl == 300
    assert statuses(resolver) == ["resolved", "cached", "cached", "cached", "cached", "resolved"]
    assert resolver.counters.by[("kids", "cached")] == 4
    assert resolver.upstreams.asked == ["www.example.", "www.example."]  # type: ignore[attr-defined]
    # A new routing (here: the peer's policy now denies the name) starts without packets.
    kids = compile_policy("kids", ["www.example"], [], "nxdomain", True)
    resolver.routing = Routing(
        clients=resolver.routing.clients,
        policies={**resolver.routing.policies, "kids": PolicyRuntime(kids)},
    )
    assert asked(7).rcode() == dns.rcode.NXDOMAIN
    assert asked(8).rcode() == dns.rcode.NXDOMAIN  # blocked: through the fast path...
    assert asked(9).rcode() == dns.rcode.NXDOMAIN  # ...and then the packet cache
    assert statuses(resolver)[-3:] == ["blocked", "blocked", "blocked"]


def test_negative_answers_are_cached_for_the_soa_minimum(resolver: Resolver, clock: Clock) -> None:
    assert ask(resolver, "nxname.example").rcode() == dns.rcode.NXDOMAIN
    clock.now += 59
    assert ask(resolver, "nxname.example").rcode() == dns.rcode.NXDOMAIN
    clock.now += 2
    ask(resolver, "nxname.example")
    assert statuses(resolver) == ["resolved", "cached", "resolved"]


def test_fail_closed_and_serve_stale(resolver: Resolver, clock: Clock) -> None:
    upstream: Scripted = resolver.upstreams  # type: ignore[assignment]
    ask(resolver, "www.example")
    upstream.down = True
    assert ask(resolver, "other.example").rcode() == dns.rcode.SERVFAIL
    clock.now += 400  # expired, within the stale bound
    stale = ask(resolver, "www.example")
    assert stale.rcode() == dns.rcode.NOERROR and stale.answer[0].ttl == 30
    clock.now += 700  # past the bound
    assert ask(resolver, "www.example").rcode() == dns.rcode.SERVFAIL
    assert statuses(resolver) == ["resolved", "servfail", "stale", "servfail"]


def test_garbage_gets_formerr_or_silence(resolver: Resolver) -> None:
    assert resolver.handle(b"\x00", "10.8.0.2", False) is None
    out = resolver.handle(b"\x12\x34\x01\x00" + b"\x00" * 8, "10.8.0.2", False)
    assert isinstance(out, bytes) and out[3] & 0xF == dnswire.FORMERR


def test_cache_evicts_when_full(clock: Clock) -> None:
    cache = AnswerCache(CacheLimits(max_entries=10), clock=clock)
    for i in range(25):
        request = dns.message.make_query(f"n{i}.example", "A")
        response = dns.message.make_response(request)
        response.answer.append(dns.rrset.from_text(f"n{i}.example.", 60, "IN", "A", "192.0.2.1"))
        cache.put((f"n{i}.example", 1, 1, False), response.to_wire())
    assert len(cache) <= 10
    assert cache.get(("n24.example", 1, 1, False)) is not None


def test_upstream_specs() -> None:
    assert [
        u.label for u in parse_upstreams("udp://192.0.2.1, tls://[2001:db8::1]#dns.example")
    ] == [
        "udp://192.0.2.1:53",
        "tls://[2001:db8::1]:853#dns.example",
    ]
    for bad in ("http://1.1.1.1", "udp://dns.example:53", "udp://1.1.1.1#name", "udp://1.1.1.1/x"):
        with pytest.raises(ValueError):
            parse_upstream(bad)


def test_nft_section_redirects_exempts_and_refuses() -> None:
    guard = DnsGuard(
        {"wg0": ("10.8.0.1", "fd00:8::1")}, ("10.8.0.7",), ("192.0.2.53", "2001:db8::53")
    )
    section = dns_section(guard)
    body = "\n".join(section.declarations)
    # One map lookup per family, whatever the number of interfaces: no interface named.
    assert "meta nfproto ipv4 udp dport 53 dnat ip to iifname map @dns4" in body
    assert "meta nfproto ipv6 tcp dport 53 dnat ip6 to iifname map @dns6" in body
    assert "wg0" not in body
    assert "elements = { 10.8.0.7/32 }" in body
    assert "elements = { 192.0.2.53/32 }" in body and "tcp dport 853 reject" in body
    assert section.rules["prerouting"] == ("iifname @ww_ifaces jump dns_redirect",)
    assert section.rules["forward"] == ("iifname @ww_ifaces jump dns_refuse",)


def test_the_planned_table_holds_the_dns_section() -> None:
    state = DesiredState(
        {},
        frozenset(),
        (NatNetwork("wg0", "10.8.0.0/24"),),
        None,
        dns_guard=DnsGuard({"wg0": ("10.8.0.1",)}),
    )
    guard = state.dns_guard
    assert guard is not None
    rs = firewall.ruleset(
        state.nat, None, state.policy, extra=firewall_sections(state), dns=guard.gateways
    )
    assert "jump dns_redirect" in rs.skeleton and "chain dns_refuse" in rs.skeleton
    # Where wg0's port 53 goes is an element of the map, not a rule.
    assert firewall.Element("dns4", '"wg0"', "10.8.0.1") in rs.layer.elements
    assert firewall_sections(DesiredState({}, frozenset(), (), None)) == []


def test_known_blocked_names_come_from_prebuilt_bytes(resolver: Resolver) -> None:
    first = ask(resolver, "games.example")
    policy = resolver.routing.policies["kids"]
    assert len(policy.answers) == 1
    again = dns.message.make_query("GAMES.example", "A")
    again.id = 4242
    wire = again.to_wire()
    fast = dnswire.fast_question(wire)
    assert fast is not None
    out = resolver._fast(wire, "10.8.0.2", False, fast)
    assert out is not None
    reply = dns.message.from_wire(out)
    assert reply.id == 4242 and str(reply.question[0].name) == "GAMES.example."
    assert reply.answer[0][0].to_text() == first.answer[0][0].to_text() == "0.0.0.0"
    assert statuses(resolver) == ["blocked", "blocked"]

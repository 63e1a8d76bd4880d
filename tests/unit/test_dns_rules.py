"""Blocklist formats (with real-world oddities) and rule precedence."""

from __future__ import annotations

import pytest

from wirewarden.domain.dnsrules import (
    NotABlocklist,
    compile_chunks,
    compile_policy,
    normalize_domain,
    parse_list,
    parse_rule,
    suffixes,
)

HOSTS = """\
# Title: StevenBlack/hosts
#
127.0.0.1 localhost
127.0.0.1 localhost.localdomain
255.255.255.255 broadcasthost
::1 localhost ip6-localhost ip6-loopback
fe80::1%lo0 localhost
0.0.0.0 0.0.0.0
0.0.0.0 ads.example.com
0.0.0.0\tTabbed.Example.NET.
127.0.0.1 one.example two.example   # several names and a comment
0.0.0.0 bad_name!.example
:: v6null.example
"""

ADBLOCK = """\
[Adblock Plus 2.0]
! Title: AdGuard DNS filter
||tracker.example^
||cdn.tracker.example^$important
@@||good.tracker.example^
@@||allowed.example^|
||*.wild.example^
||example.org/ads.js
||badoption.example^$domain=foo.com
example.com##.banner
/regex-rule/
|exact.example^
"""

PLAIN = (
    "plain.example\n"
    "  Indented.example  \n"
    """\
# comment
! also a comment
xn--bcher-kva.example
bücher.example
not a domain
*.wildplain.example
trailing.dot.example.
"""
)


def test_hosts_format() -> None:
    out = parse_list(HOSTS.splitlines())
    names = {n for n, _ in out.deny}
    assert names == {
        "ads.example.com",
        "tabbed.example.net",
        "one.example",
        "two.example",
        "v6null.example",
    }
    assert out.comments == 2
    assert out.junk == 1 and "bad_name!" in out.junk_examples[0]


def test_adblock_format() -> None:
    out = parse_list(ADBLOCK.splitlines())
    assert set(out.deny) == {
        ("tracker.example", False),
        ("cdn.tracker.example", False),
        ("wild.example", True),
        ("exact.example", False),
    }
    assert set(out.allow) == {("good.tracker.example", False), ("allowed.example", False)}
    assert out.comments == 2
    assert out.junk == 4  # a path, a $domain option, a cosmetic rule, a regex


def test_plain_format_with_idna_and_wildcards() -> None:
    out = parse_list(PLAIN.splitlines())
    assert set(out.deny) == {
        ("plain.example", False),
        ("indented.example", False),
        ("xn--bcher-kva.example", False),
        ("wildplain.example", True),
        ("trailing.dot.example", False),
    }
    assert out.junk == 1


def test_compiled_chunks_match_line_parsing() -> None:
    text = HOSTS + ADBLOCK + PLAIN
    compiled, parsed = compile_chunks("mixed", [text])
    policy = compile_policy("p", (), (), "nxdomain", True, [compiled])
    for name in ("ads.example.com", "x.tracker.example", "a.wild.example", "two.example"):
        assert policy.verdict(name) is not None, name
    for name in ("good.tracker.example", "wild.example", "localhost", "allowed.example"):
        assert policy.verdict(name) is None, name
    assert parsed.junk == 6


def test_crlf_lines_and_html_and_empty_lists() -> None:
    compiled, _ = compile_chunks("crlf", ["a.example\r\n0.0.0.0 b.example\r\n"])
    policy = compile_policy("p", (), (), "nxdomain", False, [compiled])
    assert policy.verdict("a.example") and policy.verdict("b.example")
    with pytest.raises(NotABlocklist, match="HTML"):
        compile_chunks("html", ["<!DOCTYPE html>\n<html><body>Not found</body></html>\n"])
    with pytest.raises(NotABlocklist, match="no domain"):
        compile_chunks("empty", ["# only comments\n\n"])
    with pytest.raises(NotABlocklist, match="binary"):
        compile_chunks("bin", ["\x00\x01\x02"])


def test_rules() -> None:
    assert parse_rule("*.Example.com.") == ("example.com", True)
    assert parse_rule("example.com") == ("example.com", False)
    assert parse_rule("exa mple.com") is None
    assert parse_rule("-bad-.com") is None
    assert normalize_domain("a" * 64 + ".com") is None
    assert suffixes("a.b.c") == ["a.b.c", "b.c", "c"]


def test_deny_blocks_subdomains_and_wildcards_only_subdomains() -> None:
    policy = compile_policy("p", ["ads.example", "*.wild.example"], [], "nxdomain", True)
    assert policy.verdict("ads.example") is not None
    assert policy.verdict("x.y.ads.example") is not None
    assert policy.verdict("notads.example") is None
    assert policy.verdict("wild.example") is None
    assert policy.verdict("a.wild.example") is not None


def test_allow_wins_over_deny_and_lists() -> None:
    compiled, _ = compile_chunks("list", ["||example.com^\n"])
    policy = compile_policy(
        "p",
        ["tracker.example"],
        ["ok.example.com", "*.tracker.example"],
        "null-ip",
        True,
        [compiled],
    )
    assert policy.verdict("ok.example.com") is None
    assert policy.verdict("sub.ok.example.com") is None
    verdict = policy.verdict("other.example.com")
    assert verdict is not None and verdict.reason == "list list" and verdict.answer == "null-ip"
    assert policy.verdict("tracker.example") is not None  # the wildcard allow is subdomains only
    assert policy.verdict("a.tracker.example") is None


def test_anti_bypass_names() -> None:
    on = compile_policy("p", [], [], "null-ip", True)
    off = compile_policy("p", [], [], "null-ip", False)
    for canary in ("use-application-dns.net", "mask.icloud.com", "mask-h2.icloud.com"):
        verdict = on.verdict(canary)
        assert verdict is not None and verdict.answer == "nxdomain"
        assert off.verdict(canary) is None
    verdict = on.verdict("_dns.resolver.arpa")
    assert verdict is not None and verdict.answer == "nodata"
    assert on.verdict("icloud.com") is None

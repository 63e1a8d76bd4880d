"""Blocklist formats, rules and the compiled domain sets a DNS policy matches against.

A rule `example.com` matches the name and every name under it; `*.example.com`
matches only the names under it. Allow rules win over deny rules.

A compiled set holds 64-bit hashes of names in a sorted `array`: about 8 bytes
per domain instead of the ~100 a Python `set` of strings costs, and a lookup is
one C-level binary search per suffix of the asked name. The hashes are Python's
own (SipHash), which is salted per process: sets are compiled in the process that
uses them, never stored. A false match needs a 64-bit collision with one of the
listed names (about 1 in 10^13 per query at a million names).
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import NamedTuple

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
# Names hosts files map to loopback for the host's own sake, never as blocks.
HOSTS_LOCAL = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",  # noqa: S104 - a name hosts files list, not a bind
    }
)
# Adblock options that do not narrow a rule for DNS; any other option makes it
# a browser rule we cannot honour by name alone, so the line is skipped.
_ADBLOCK_OK_OPTIONS = frozenset({"important", "all", "document", "doc", "popup", "third-party"})

CANARIES = ("use-application-dns.net", "mask.icloud.com", "mask-h2.icloud.com")
DDR_ZONE = "resolver.arpa"


class NotABlocklist(ValueError):
    """The text is not a blocklist (an HTML page, a binary, nothing usable)."""


def normalize_domain(text: str) -> str | None:
    """The canonical spelling of a domain (lower case, no trailing dot, IDNA for
    non-ASCII), or None when it is not a valid name."""
    name = text.strip().lower().rstrip(".")
    if not name or len(name) > 253:
        return None
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return name if _DOMAIN.fullmatch(name) else None


def parse_rule(text: str) -> tuple[str, bool] | None:
    """A user rule: (domain, subdomains_only) for `example.com` / `*.example.com`."""
    text = text.strip()
    wildcard = text.startswith("*.")
    name = normalize_domain(text[2:] if wildcard else text)
    return None if name is None else (name, wildcard)


@dataclass
class ParsedList:
    """What a blocklist holds, and what of it was skipped."""

    deny: list[tuple[str, bool]] = field(default_factory=list)
    allow: list[tuple[str, bool]] = field(default_factory=list)
    comments: int = 0
    junk: int = 0
    junk_examples: list[str] = field(default_factory=list)
    deny_count: int = 0

    def add_junk(self, line: str) -> None:
        self.junk += 1
        if len(self.junk_examples) < 5:
            self.junk_examples.append(line[:100])


def _strip_comment(line: str) -> str:
    for mark in (" #", "\t#"):
        cut = line.find(mark)
        if cut >= 0:
            line = line[:cut]
    return line.strip()


_IPV6 = re.compile(r"[0-9a-f:.]*:[0-9a-f:.]*(?:%\S+)?", re.IGNORECASE)


def _looks_like_ip(token: str) -> bool:
    return bool(_IPV4.fullmatch(token) or _IPV6.fullmatch(token))


def _hosts_line(tokens: list[str], out: ParsedList, line: str) -> None:
    names = [normalize_domain(t) for t in tokens[1:]]
    good = [(n, False) for n in names if n is not None and n not in HOSTS_LOCAL]
    if not good and any(n is None for n in names):
        out.add_junk(line)
    out.deny.extend(good)


def _adblock_line(line: str, out: ParsedList) -> None:
    allow = line.startswith("@@")
    body = line[2:] if allow else line
    if body.startswith("||"):
        body = body[2:]
    elif body.startswith("|"):
        body = body[1:]
    body, _, options = body.partition("$")
    if options and not {o.strip().lstrip("~") for o in options.split(",")} <= _ADBLOCK_OK_OPTIONS:
        out.add_junk(line)
        return
    body = body.removesuffix("|")
    if not body.endswith("^"):
        out.add_junk(line)
        return
    rule = parse_rule(body[:-1])
    if rule is None:
        out.add_junk(line)
        return
    (out.allow if allow else out.deny).append(rule)


def parse_line(raw: str, out: ParsedList) -> None:
    line = raw.strip()
    if not line:
        return
    first = line[0]
    if first in "#![" or line.startswith("//"):
        out.comments += 1
        return
    if first in "|@":
        _adblock_line(line, out)
        return
    tokens = _strip_comment(line).split()
    if not tokens:
        out.comments += 1
        return
    if len(tokens) > 1 and _looks_like_ip(tokens[0]):
        _hosts_line(tokens, out, line)
        return
    rule = parse_rule(tokens[0]) if len(tokens) == 1 else None
    if rule is None:
        out.add_junk(line)
    else:
        out.deny.append(rule)


_HTML = re.compile(r"\s*(<!doctype|<html|<\?xml|<head|<body)", re.IGNORECASE)


def parse_list(lines: Iterable[str]) -> ParsedList:
    """Parse a blocklist in hosts, adblock (`||d^`, `@@||d^`) or plain form, mixed
    freely. Raises NotABlocklist for an HTML page or a text without a single rule."""
    out = ParsedList()
    for index, line in enumerate(lines):
        if index < 5 and _HTML.match(line):
            raise NotABlocklist("the source is an HTML page, not a blocklist")
        if "\x00" in line:
            raise NotABlocklist("the source is binary, not a blocklist")
        parse_line(line, out)
    if not out.deny and not out.allow:
        what = f"{out.junk} unusable lines" if out.junk else "no rules"
        raise NotABlocklist(f"no domain found in the list ({what})")
    return out


# ---------------------------------------------------------------- matching


def suffixes(name: str) -> list[str]:
    """`a.b.c` -> [`a.b.c`, `b.c`, `c`]."""
    out = [name]
    at = name.find(".")
    while at >= 0:
        out.append(name[at + 1 :])
        at = name.find(".", at + 1)
    return out


def _sorted_unique(values: array[int], drop: frozenset[int] = frozenset()) -> array[int]:
    unique = set(values)
    unique -= drop
    return array("q", sorted(unique))


class SortedRuns:
    """Hashes sorted as they arrive, in runs merged FANIN at a time, like a counter.

    A reload compiles beside the resolver's event loop in one process: no single C call
    (a sort, a set) may hold the GIL for long, or queries stall. Each merge is Timsort on
    sorted runs (it finds them and merges, in C); the largest call is the last merge.
    Every merge boxes each value into a Python int and back, which is most of its cost:
    merging 8 runs at a time instead of 2 makes about a third as many passes.
    """

    FANIN = 8

    def __init__(self) -> None:
        self.runs: list[array[int]] = []

    def add(self, values: Iterable[int], drop: frozenset[int] = frozenset()) -> None:
        unique = set(values)
        unique -= drop
        if not unique:
            return
        runs, fanin = self.runs, self.FANIN
        runs.append(array("q", sorted(unique)))
        # The newest FANIN runs are of one level when the oldest of them is not much larger.
        while len(runs) >= fanin and len(runs[-fanin]) <= 2 * len(runs[-1]):
            merged = _merge(runs[-fanin:])
            del runs[-fanin:]
            runs.append(merged)

    def result(self) -> array[int]:
        if len(self.runs) > 1:
            self.runs = [_merge(self.runs)]
        return self.runs[0] if self.runs else array("q")


def _merge(runs: list[array[int]]) -> array[int]:
    return array("q", sorted(chain.from_iterable(runs)))


class DomainSet:
    """Rules compiled for lookup: names with their subdomains, and subdomains only."""

    __slots__ = ("names", "size", "under")

    def __init__(
        self,
        names: array[int],
        under: array[int],
        drop: frozenset[int] = frozenset(),
        presorted: bool = False,
    ) -> None:
        self.names = names if presorted else _sorted_unique(names, drop)
        self.under = under if presorted else _sorted_unique(under)
        self.size = len(self.names) + len(self.under)

    @classmethod
    def of(cls, rules: Iterable[tuple[str, bool]]) -> DomainSet:
        names, under = array("q"), array("q")
        for name, wildcard in rules:
            (under if wildcard else names).append(hash(name))
        return cls(names, under)

    @staticmethod
    def _has(values: array[int], value: int) -> bool:
        at = bisect_left(values, value)
        return at < len(values) and values[at] == value

    def matches(self, hashes: list[int]) -> bool:
        """`hashes` are those of the name's suffixes, the name itself first."""
        names, under = self.names, self.under
        if names:
            for value in hashes:
                if self._has(names, value):
                    return True
        if under:
            for value in hashes[1:]:
                if self._has(under, value):
                    return True
        return False

    def __len__(self) -> int:
        return self.size


EMPTY = DomainSet(array("q"), array("q"))


@dataclass(frozen=True)
class CompiledList:
    """A blocklist ready for matching: its deny and allow entries."""

    source: str
    deny: DomainSet
    allow: DomainSet


# The common line shapes (`0.0.0.0 name`, `||name^`, `name`), matched over a whole
# chunk of text by one regex in C; the other lines (group 2) go through parse_line.
# The fast shape checks labels loosely (no length limits): a malformed name in a
# list costs a few bytes and can never match a query.
_FAST = re.compile(
    r"^[ \t]*(?:(?:(?:0\.0\.0\.0|127\.0\.0\.1|::1?)[ \t]+|\|\|)?"
    r"([a-z0-9_-]+(?:\.[a-z0-9_-]+)+)\.?\^?[ \t]*\r?|(.+))$",
    re.MULTILINE,
)
_LOCAL_HASHES = frozenset(hash(n) for n in HOSTS_LOCAL)
_NAME, _OTHER = itemgetter(0), itemgetter(1)


def compile_chunks(source: str, chunks: Iterable[str]) -> tuple[CompiledList, ParsedList]:
    """Parse and compile a list given as chunks of whole lines, without keeping the
    names (a million-name list would cost ~100 MB as strings). Raises NotABlocklist."""
    out = ParsedList()
    names, under = SortedRuns(), SortedRuns()
    for index, chunk in enumerate(chunks):
        if index == 0:
            _check_text(chunk)
        found = _FAST.findall(chunk.lower())
        # map/filter: the per-line steps run in C (a generator cost 0.6 s a million lines).
        names.add(map(hash, filter(None, map(_NAME, found))), _LOCAL_HASHES)
        for line in filter(None, map(_OTHER, found)):
            parse_line(line, out)
        names.add(hash(name) for name, wildcard in out.deny if not wildcard)
        under.add(hash(name) for name, wildcard in out.deny if wildcard)
        out.deny.clear()
    deny = DomainSet(names.result(), under.result(), presorted=True)
    if not deny.size and not out.allow:
        what = f"{out.junk} unusable lines" if out.junk else "no rules"
        raise NotABlocklist(f"no domain found in the list ({what})")
    out.deny_count = len(deny)
    return CompiledList(source, deny, DomainSet.of(out.allow)), out


def _check_text(head: str) -> None:
    for line in head[:4096].splitlines()[:5]:
        if _HTML.match(line):
            raise NotABlocklist("the source is an HTML page, not a blocklist")
    if "\x00" in head[:65536]:
        raise NotABlocklist("the source is binary, not a blocklist")


class Verdict(NamedTuple):
    """Why a name is blocked, and how to answer it. A tuple of strings: the resolver
    keeps one per name asked, and the garbage collector need not track them."""

    reason: str  # "deny", "list <source>", "anti-bypass"
    answer: str  # "nxdomain", "null-ip", "nodata"


@dataclass(frozen=True)
class CompiledPolicy:
    name: str
    block_answer: str
    anti_bypass: bool
    deny: DomainSet
    allow: DomainSet
    lists: tuple[CompiledList, ...]

    def verdict(self, name: str) -> Verdict | None:
        """None when the name may be resolved; else why it is blocked."""
        names = suffixes(name) if name else [""]
        if self.anti_bypass:
            special = _anti_bypass(names)
            if special is not None:
                return special
        hashes = [hash(n) for n in names]
        if self.allow.matches(hashes) or any(lst.allow.matches(hashes) for lst in self.lists):
            return None
        if self.deny.matches(hashes):
            return Verdict("deny", self.block_answer)
        for lst in self.lists:
            if lst.deny.matches(hashes):
                return Verdict(f"list {lst.source}", self.block_answer)
        return None


_CANARY_SET = frozenset(CANARIES)


def _anti_bypass(names: list[str]) -> Verdict | None:
    if any(n in _CANARY_SET for n in names):
        return Verdict("anti-bypass", "nxdomain")
    if DDR_ZONE in names:
        return Verdict("anti-bypass", "nodata")
    return None


def compile_policy(
    name: str,
    deny: Iterable[str],
    allow: Iterable[str],
    block_answer: str,
    anti_bypass: bool,
    lists: Iterable[CompiledList] = (),
) -> CompiledPolicy:
    """Rules are validated at the edge; any that slipped through are ignored here."""
    return CompiledPolicy(
        name,
        block_answer,
        anti_bypass,
        DomainSet.of(_rules(deny)),
        DomainSet.of(_rules(allow)),
        tuple(lists),
    )


def _rules(texts: Iterable[str]) -> Iterator[tuple[str, bool]]:
    for text in texts:
        rule = parse_rule(text)
        if rule is not None:
            yield rule

"""Inputs and outputs of the DNS use cases (policies, blocklists, query log, stats)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wirewarden.dns.lists import check_source
from wirewarden.domain.dnsrules import parse_rule

MAX_RULES = 10_000
MAX_LISTS = 50


def _rules(values: list[str]) -> list[str]:
    out: list[str] = []
    for text in values:
        rule = parse_rule(text)
        if rule is None:
            raise ValueError(
                f"{text!r} is not a domain name (a name like example.com, or *.example.com)"
            )
        name, wildcard = rule
        spelled = f"*.{name}" if wildcard else name
        if spelled not in out:
            out.append(spelled)
    return out


class DnsPolicyIn(BaseModel):
    """A whole policy (PUT replaces it)."""

    model_config = ConfigDict(extra="forbid")

    blocklists: list[str] = Field(default_factory=list, max_length=MAX_LISTS)
    deny: list[str] = Field(default_factory=list, max_length=MAX_RULES)
    allow: list[str] = Field(default_factory=list, max_length=MAX_RULES)
    block_answer: Literal["nxdomain", "null-ip"] = "nxdomain"
    anti_bypass: bool = True

    @field_validator("deny", "allow")
    @classmethod
    def _check_rules(cls, values: list[str]) -> list[str]:
        return _rules(values)

    @field_validator("blocklists")
    @classmethod
    def _check_lists(cls, values: list[str]) -> list[str]:
        out: list[str] = []
        for text in values:
            source = check_source(text)
            if source not in out:
                out.append(source)
        return out


class BlocklistOut(BaseModel):
    source: str
    entries: int
    allow_entries: int
    comments: int
    junk: int
    junk_examples: list[str]
    fetched_at: str | None
    checked_at: str | None
    error: str | None
    has_copy: bool


class DnsPolicyOut(BaseModel):
    name: str
    # The tenant owning it; None: global, shared by every tenant (only admins change it).
    tenant: str | None = None
    blocklists: list[str]
    deny: list[str]
    allow: list[str]
    block_answer: str
    anti_bypass: bool
    lists: list[BlocklistOut] = Field(default_factory=list)
    peers: int = 0  # peers that have it as their own policy
    updated_at: datetime


class DnsQueryOut(BaseModel):
    id: int
    at: datetime
    peer_id: int | None
    peer: str | None
    client: str
    policy: str
    name: str
    qtype: str
    status: str  # resolved, cached, blocked, stale, servfail, refused
    reason: str | None
    rcode: str
    upstream: str | None
    latency_ms: float | None
    count: int = 1  # identical queries answered alike within one log flush (5 s, from `at`)


class NameCount(BaseModel):
    name: str
    count: int


class GroupStats(BaseModel):
    key: str
    peer_id: int | None = None
    queries: int
    blocked: int
    blocked_share: float


class DnsStats(BaseModel):
    since: datetime
    queries: int
    blocked: int
    blocked_share: float
    by_status: dict[str, int]
    top_blocked: list[NameCount]
    top_allowed: list[NameCount]
    # Names that got no answer (SERVFAIL or REFUSED): an upstream or validation failure.
    top_failed: list[NameCount] = []
    by_peer: list[GroupStats]
    by_policy: list[GroupStats]


class TenantDnsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: str | None = None

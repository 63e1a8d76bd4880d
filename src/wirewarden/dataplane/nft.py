"""Our nftables table: applied whole (`nft -f`, atomic) or element by element; observed as JSON."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from wirewarden.dataplane.run import CommandError, run
from wirewarden.domain.firewall import (
    APP_COUNT_SETS,
    EXPOSE_COUNT_SET,
    FLOW_COUNT_SETS,
    MANAGED_SETS,
    META,
    TABLE,
    AppCount,
    Element,
    ExposeCount,
    KernelCounts,
    ObservedFirewall,
    Quota,
)

_DIGEST = re.compile(r'comment "wirewarden ([0-9a-f]+)"')


def digest() -> str | None:
    """The digest of our table's skeleton ('' for a table without one, None: no table).

    Read from a one-line set: listing the table loads every element (0.5 s at 10k peers)."""
    found = run(["nft", "list", "set", "inet", TABLE, META], check=False)
    if found.returncode == 0:
        match = _DIGEST.search(found.stdout)
        return match.group(1) if match else ""
    tables = run(["nft", "list", "tables", "inet"], check=False).stdout
    return "" if f"table inet {TABLE}" in tables.split("\n") else None


def observe() -> ObservedFirewall | None:
    """Digest, per-peer elements and quotas of our table, or None when the table is gone."""
    seen = digest()
    if seen is None:
        return None
    try:
        out = run(["nft", "-j", "list", "table", "inet", TABLE], timeout=30).stdout
    except CommandError:
        return None
    found = parse_table(json.loads(out))
    return ObservedFirewall(seen, found.elements, found.quotas)


def parse_table(doc: dict[str, Any]) -> ObservedFirewall:
    elements: set[Element] = set()
    quotas: dict[str, Quota] = {}
    for item in doc.get("nftables", []):
        if "quota" in item:
            q = item["quota"]
            quotas[q["name"]] = Quota(q["name"], int(q["bytes"]), int(q.get("used", 0)))
        else:
            body = item.get("map") or item.get("set")
            if body and body.get("name") in MANAGED_SETS:
                name = body["name"]
                keys, values = _types(MANAGED_SETS[name])
                elements |= {_element(name, keys, values, e) for e in body.get("elem", [])}
    return ObservedFirewall(None, frozenset(elements), quotas)


def _types(kind: str) -> tuple[list[str], list[str] | None]:
    """'type ifname . ipv4_addr : verdict; ...' -> (['ifname', 'ipv4_addr'], ['verdict'])."""
    spec = kind.removeprefix("type ").split(";")[0]
    key, _, value = spec.partition(" : ")
    return key.split(" . "), value.split(" . ") if value else None


def _text(kind: str, value: Any) -> str:
    """One value as our renderer spells it: names quoted, addresses and prefixes bare."""
    if isinstance(value, dict) and "prefix" in value:
        return f"{value['prefix']['addr']}/{value['prefix']['len']}"
    if kind in ("ifname", "quota"):
        return f'"{value}"'
    if kind == "verdict" and isinstance(value, dict):  # {"jump": {"target": "acl_x"}}
        verb, arg = next(iter(value.items()))
        return f"{verb} {arg['target']}" if isinstance(arg, dict) else str(verb)
    return str(value)


def _element(name: str, keys: list[str], values: list[str] | None, raw: Any) -> Element:
    if isinstance(raw, dict) and "elem" in raw:
        raw = raw["elem"].get("val")
    key, val = (raw[0], raw[1]) if values is not None and isinstance(raw, list) else (raw, None)
    value = None if values is None else _joined(values, val)
    return Element(name, _joined(keys, key), value)


def _joined(kinds: list[str], raw: Any) -> str:
    """A (possibly concatenated) key or value: 'a . b' with each part in our spelling."""
    parts = raw["concat"] if isinstance(raw, dict) and "concat" in raw else [raw]
    return " . ".join(_text(kind, part) for kind, part in zip(kinds, parts, strict=True))


def quotas() -> dict[str, Quota]:
    """Our quotas with their limits and the bytes they counted ({} without our table)."""
    try:
        out = run(["nft", "-j", "list", "quotas", "table", "inet", TABLE], timeout=30).stdout
    except CommandError:
        return {}
    return dict(parse_table(json.loads(out)).quotas)


def kernel_counts() -> KernelCounts:
    """The counters of our dynamic sets (empty without our table)."""
    apps: list[AppCount] = []
    for name in APP_COUNT_SETS:
        apps += parse_app_counts(_listed_set(name))
    flows: list[AppCount] = []
    for name in FLOW_COUNT_SETS:
        flows += parse_app_counts(_listed_set(name))
    exposed = tuple(parse_expose_counts(_listed_set(EXPOSE_COUNT_SET)))
    return KernelCounts(with_flows(apps, flows), exposed)


def with_flows(apps: list[AppCount], flows: list[AppCount]) -> tuple[AppCount, ...]:
    """The traffic counts with their flows (a flow set's element counts one packet a
    flow); a flow counted before its first byte was is kept with no bytes."""
    count = {(f.address, f.mark): f.packets for f in flows}
    out = [replace(a, flows=count.pop((a.address, a.mark), 0)) for a in apps]
    out += [AppCount(address, mark, 0, 0, n) for (address, mark), n in count.items()]
    return tuple(out)


def _listed_set(name: str) -> dict[str, Any]:
    try:
        out = run(["nft", "-j", "list", "set", "inet", TABLE, name], timeout=30).stdout
    except CommandError:
        return {}
    found: dict[str, Any] = json.loads(out)
    return found


def _counted(doc: dict[str, Any], arity: int) -> list[tuple[list[Any], int, int]]:
    """(key, packets, bytes) of the elements of an `nft -j list set` of concatenations
    with counters."""
    found = []
    for item in doc.get("nftables", []):
        for elem in item.get("set", {}).get("elem", []):
            inner = elem.get("elem") if isinstance(elem, dict) else None
            if not isinstance(inner, dict) or not isinstance(inner.get("val"), dict):
                continue
            key = inner["val"].get("concat")
            counter = inner.get("counter") or {}
            if isinstance(key, list) and len(key) == arity:
                found.append((key, int(counter.get("packets", 0)), int(counter.get("bytes", 0))))
    return found


def parse_app_counts(doc: dict[str, Any]) -> list[AppCount]:
    """Elements of a set of address . mark with counters."""
    return [AppCount(str(k[0]), int(k[1]), p, b) for k, p, b in _counted(doc, 2)]


def parse_expose_counts(doc: dict[str, Any]) -> list[ExposeCount]:
    """Elements of the set of protocol . address . port with counters."""
    return [ExposeCount(str(k[0]), str(k[1]), int(k[2]), p, b) for k, p, b in _counted(doc, 3)]


def apply_ruleset(script: str) -> None:
    run(["nft", "-f", "-"], stdin=script, timeout=60)


def delete_table() -> None:
    run(["nft", "delete", "table", "inet", TABLE], check=False)

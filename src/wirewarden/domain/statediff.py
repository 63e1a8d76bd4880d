"""Deltas between two versions of a JSON document (a node's state as the fleet sends it).

A patch is an RFC 7396 merge patch: objects descend key by key, a key whose value is None
is removed, anything else (a list, a string, a number) is replaced whole. Documents are
shaped so that what changes often (one peer among 10,000) sits under object keys, so a
change to one peer is a patch naming that peer. `digest` is what both ends compare after
a patch (`advance` keeps it current at the cost of the patch): a delta that does not land
on the sender's digest is answered with a resync, so a missed or reordered delta can never
leave a node on a state nobody sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

Document = dict[str, Any]


class PatchError(ValueError):
    """A patch that cannot apply to this document (it holds None where RFC 7396 has no
    way to say "set to null", or it is not an object)."""


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> Document:
    """The merge patch that turns `old` into `new`. Empty when they are equal. A value of
    None in `new` cannot be expressed by a merge patch: documents leave such keys out."""
    patch: Document = {}
    for key, value in new.items():
        if value is None:
            raise PatchError(f"{key}: a document holds no null values (leave the key out)")
        before = old.get(key, _MISSING)
        if before is value or before == value:
            continue
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[key] = diff(before, value)
        else:
            patch[key] = _copy(value)
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def patch(doc: Mapping[str, Any], change: Mapping[str, Any]) -> Document:
    """`doc` with `change` applied; `doc` itself is left as it was (the parts the patch
    does not touch are shared, not copied)."""
    if not isinstance(change, Mapping):
        raise PatchError("a patch is an object")
    out = dict(doc)
    for key, value in change.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            base = out.get(key)
            out[key] = patch(base if isinstance(base, Mapping) else {}, value)
        else:
            out[key] = value
    return out


def digest(doc: Mapping[str, Any]) -> str:
    """The document's digest: equal documents have equal digests whatever order their
    keys were built in, and `advance` gives a patched document's digest at the cost of
    the patch, not of the document (at 10,000 peers a full digest is tens of ms).

    A multiset hash (the sum of sha256 over the document's parts, mod 2**256): an object
    that is large or holds objects of objects counts as its path and a marker plus its
    members, anything else as its path and canonical JSON. So a peer's record is one part
    and a change to it costs one record's hash."""
    return _hex(_weight("", doc))


def advance(
    doc: Mapping[str, Any], doc_digest: str, change: Mapping[str, Any]
) -> tuple[Document, str]:
    """`doc` patched by `change`, and the new document's digest given `doc_digest`."""
    new = patch(doc, change)
    moved = _moved("", doc, change, new)
    return new, _hex(int(doc_digest, 16) + moved)


_MOD = 1 << 256


def _hex(value: int) -> str:
    return f"{value % _MOD:064x}"


def _part(path: str, text: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{path}\0{text}".encode()).digest(), "big")


def _member(path: str, key: str) -> str:
    # A path is its keys as JSON strings one after the other: no key can fake a boundary.
    return path + _CANONICAL.encode(key)


# Objects with more members than this are hashed member by member.
_WIDE = 16


def _nested(value: Any) -> bool:
    """Whether an object's digest is made of its members' (else of its whole JSON)."""
    # dict, not Mapping: documents are JSON objects, and this runs for every part.
    if type(value) is not dict:
        return False
    if len(value) > _WIDE:
        return True
    return any(type(v) is dict and any(type(w) is dict for w in v.values()) for v in value.values())


def _weight(path: str, value: Any) -> int:
    if _nested(value):
        total = _part(path, "{}")
        for key, member in value.items():
            total += _weight(_member(path, key), member)
        return total % _MOD
    return _part(path, _canonical(value))


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(value: Any) -> str:
    return _CANONICAL.encode(value)


def _moved(
    path: str, old: Mapping[str, Any], change: Mapping[str, Any], new: Mapping[str, Any]
) -> int:
    """How much the weight at `path` changes when `change` turns `old` into `new`."""
    if not (_nested(old) and _nested(new)):
        return _weight(path, new) - _weight(path, old)
    moved = 0
    for key, step in change.items():
        here = _member(path, key)
        before = old.get(key, _MISSING)
        after = new.get(key, _MISSING)
        if isinstance(step, Mapping) and isinstance(before, Mapping) and isinstance(after, Mapping):
            moved += _moved(here, before, step, after)
            continue
        if not isinstance(before, _Missing):
            moved -= _weight(here, before)
        if not isinstance(after, _Missing):
            moved += _weight(here, after)
    return moved


def size(change: Mapping[str, Any]) -> int:
    """How many leaf values a patch sets or removes: what a sender weighs against a
    snapshot."""
    return sum(size(v) if isinstance(v, Mapping) and v else 1 for v in change.values())


class _Missing:
    pass


_MISSING = _Missing()


def _copy(value: Any) -> Any:
    # A patch must not share mutable parts with the document it was made from: the
    # sender keeps that document and the receiver may change what it got.
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value

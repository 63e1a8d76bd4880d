"""tc for per-peer speed limits: observe HTB classes and u32 filters, apply a batch."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from wirewarden.dataplane.run import CommandError, run
from wirewarden.domain.tcplan import (
    CATCH_ALL_PRIO,
    FALLBACK,
    HT,
    PRIO,
    PROTO,
    ObservedShape,
    ObservedTc,
    TcChanges,
    ifb_name,
)

_CLASS = re.compile(r"^class htb 1:([0-9a-f]+) .*?\brate (\d+(?:\.\d+)?)([KMG]?)bit", re.M)
_CLASS_SHAPE = re.compile(
    r"^class htb 1:([0-9a-f]+) (?:root|parent 1:([0-9a-f]*)).*?\bceil (\d+(?:\.\d+)?)([KMG]?)bit",
    re.M,
)
# tc prints bucket 0 as an empty field: "fh 100::12".
_FILTER = re.compile(r"\bfh ([0-9a-f]+):([0-9a-f]*):([0-9a-f]+) .*?\bflowid 1:([0-9a-f]+)")
_LINK = re.compile(r"\blink ([0-9a-f]+):")
_UNITS = {"": 0.001, "K": 1, "M": 1000, "G": 1000000}
_NO_LEAF = "qdisc kind is unknown"


def parse_classes(text: str) -> dict[int, int]:
    """minor -> rate in kbit, from `tc class show` (tc prints SI units)."""
    return {
        int(minor, 16): round(float(value) * _UNITS[unit])
        for minor, value, unit in _CLASS.findall(text)
    }


def parse_class_shapes(text: str) -> tuple[dict[int, int], dict[int, int]]:
    """minor -> parent minor (0: the root), and minor -> ceil in kbit."""
    parents, ceils = {}, {}
    for minor, parent, value, unit in _CLASS_SHAPE.findall(text):
        parents[int(minor, 16)] = int(parent, 16) if parent else 0
        ceils[int(minor, 16)] = round(float(value) * _UNITS[unit])
    return parents, ceils


def parse_filters(text: str) -> tuple[dict[str, int], frozenset[int]]:
    """u32 handle -> flowid minor, and the address families whose hash table is linked."""
    ours = {f"{t:x}" for t in HT.values()}
    filters = {
        f"{ht}:{bucket or '0'}:{node}": int(minor, 16)
        for ht, bucket, node, minor in _FILTER.findall(text)
        if ht in ours  # the peers' hash tables; not the tenant's catch-all
    }
    tables = {int(t, 16) for t in _LINK.findall(text)}
    families = frozenset(fam for fam, ht in HT.items() if ht in tables)
    return filters, families


def _shape(device: str) -> tuple[ObservedShape | None, bool]:
    """The device's HTB shape (None without an HTB root) and whether it has an ingress qdisc."""
    qdiscs = json.loads(run(["tc", "-j", "qdisc", "show", "dev", device]).stdout or "[]")
    root = any(q.get("kind") == "htb" and q.get("handle") == "1:" for q in qdiscs)
    ingress = any(q.get("kind") == "ingress" for q in qdiscs)
    if not root:
        return None, ingress
    leaves = frozenset(
        int(q["parent"].split(":")[1], 16)
        for q in qdiscs
        if str(q.get("parent", "")).startswith("1:") and q.get("parent") != "1:"
    )
    shown = run(["tc", "class", "show", "dev", device]).stdout
    classes = parse_classes(shown)
    parents, ceils = parse_class_shapes(shown)
    filters_text = run(["tc", "filter", "show", "dev", device, "parent", "1:"]).stdout
    filters, links = parse_filters(filters_text)
    return (
        ObservedShape(classes, leaves, filters, links, parents, ceils, _catch_all(filters_text)),
        ingress,
    )


def unshaped(devices: Iterable[str]) -> set[str]:
    """Of `devices`, those where tc holds nothing of ours: no HTB root, no ingress qdisc,
    no IFB device. One listing of every device's qdiscs (a device absent from it is left
    to `observe`) instead of two commands a device: at 200 tenants without speed limits,
    one process a slow look instead of four hundred."""
    qdiscs = json.loads(run(["tc", "-j", "qdisc", "show"]).stdout or "[]")
    listed = {q.get("dev") for q in qdiscs}
    shaped = {
        q.get("dev")
        for q in qdiscs
        if (q.get("kind") == "htb" and q.get("handle") == "1:") or q.get("kind") == "ingress"
    }
    return {d for d in devices if d in listed and d not in shaped and ifb_name(d) not in listed}


def _catch_all(filters_text: str) -> bool:
    return any(
        f"pref {CATCH_ALL_PRIO} " in line and f"flowid 1:{FALLBACK:x}" in line
        for line in filters_text.splitlines()
    )


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def observe(interface: str, ifb: str) -> ObservedTc:
    down, ingress = _shape(interface)
    redirect = (
        ingress and ifb in run(["tc", "filter", "show", "dev", interface, "parent", "ffff:"]).stdout
    )
    has_ifb = link_exists(ifb)
    up = _shape(ifb)[0] if has_ifb else None
    return ObservedTc(down, up, has_ifb, redirect)


def _peer_shape(
    device: str, minors: set[int], handles: set[str]
) -> tuple[ObservedShape | None, bool]:
    """Like _shape, but only the given classes and filters: a few small queries instead of
    listing every class and filter of the device (the single-peer path)."""
    root = "htb 1:" in run(["tc", "qdisc", "show", "dev", device, "root"]).stdout
    ingress = "ingress" in run(["tc", "qdisc", "show", "dev", device, "ingress"]).stdout
    if not root:
        return None, ingress
    classes: dict[int, int] = {}
    parents: dict[int, int] = {}
    ceils: dict[int, int] = {}
    for minor in minors:
        cls = run(["tc", "class", "show", "dev", device, "classid", f"1:{minor:x}"]).stdout
        classes.update(parse_classes(cls))
        found_parents, found_ceils = parse_class_shapes(cls)
        parents.update(found_parents)
        ceils.update(found_ceils)
    # A class's leaf comes in the same batch as the class; the full look checks both.
    leaves = set(classes)
    filters: dict[str, int] = {}
    for handle in handles:
        fam = 6 if handle.startswith(f"{HT[6]:x}:") else 4
        argv = ["tc", "filter", "get", "dev", device, "parent", "1:", "protocol", PROTO[fam]]
        argv += ["prio", str(PRIO[fam])]
        found = run([*argv, "handle", handle, "u32"], check=False)
        if found.returncode == 0:
            filters.update(parse_filters(found.stdout)[0])
    catch_all = False
    if FALLBACK in minors:
        argv = ["tc", "filter", "show", "dev", device, "parent", "1:", "prio", str(CATCH_ALL_PRIO)]
        catch_all = _catch_all(run(argv, check=False).stdout)
    # The hash tables come with the root in one batch; the full pass checks them.
    shape = ObservedShape(
        classes, frozenset(leaves), filters, frozenset(HT), parents, ceils, catch_all
    )
    return shape, ingress


def observe_peer(interface: str, ifb: str, minors: set[int], handles: set[str]) -> ObservedTc:
    down, ingress = _peer_shape(interface, minors, handles)
    has_ifb = link_exists(ifb)
    up = _peer_shape(ifb, minors, handles)[0] if has_ifb else None
    # An ingress qdisc on our interface is only ever the redirect to its IFB.
    return ObservedTc(down, up, has_ifb, ingress and has_ifb)


class TcDriver:
    """Applies tc changes through one `tc -b` batch; falls back to a plain FIFO leaf where
    the kernel has no fair-queuing qdisc (it is a module that may be left out)."""

    def __init__(self) -> None:
        self.leaf_ok = True

    def apply(self, changes: TcChanges) -> None:
        if changes.create_ifb:
            run(["ip", "link", "add", "name", changes.ifb, "type", "ifb"])
            run(["ip", "link", "set", "dev", changes.ifb, "up"])
        lines = list(changes.lines)
        if lines:
            self._batch(lines)
        if changes.delete_ifb:
            run(["ip", "link", "del", "dev", changes.ifb], check=False)

    def _batch(self, lines: list[str]) -> None:
        if not self.leaf_ok:
            lines = [_plain_leaf(line) for line in lines]
        try:
            run(["tc", "-b", "-"], stdin="\n".join(lines) + "\n", timeout=120)
        except CommandError as exc:
            if not self.leaf_ok or _NO_LEAF not in exc.stderr:
                raise
            self.leaf_ok = False
            # The batch stopped at the first leaf; lines before it are in, `replace` and the
            # observed plan on the next pass make the rest idempotent enough to rerun all.
            run(
                ["tc", "-force", "-b", "-"],
                stdin="\n".join(map(_plain_leaf, lines)) + "\n",
                timeout=120,
                check=False,
            )


_LEAF = re.compile(r"^(qdisc replace dev \S+ parent 1:[0-9a-f]+ handle [0-9a-f]+:) .*$")


def _plain_leaf(line: str) -> str:
    return _LEAF.sub(r"\1 pfifo", line)

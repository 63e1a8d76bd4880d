"""Validation of the names users give things (DESIGN.md §8)."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# Kernel link names: at most 15 bytes (IFNAMSIZ - 1), no slash or whitespace; we keep it stricter.
IFNAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,14}$")
# Names the kernel gives a meaning of its own (net.ipv4.conf.all / .default, loopback).
RESERVED_IFNAMES = frozenset({"all", "default", "lo"})


def check_name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(
            "must be 1-32 characters of lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


def check_ifname(value: str) -> str:
    if not IFNAME_RE.fullmatch(value):
        raise ValueError(
            "must be 1-15 characters of lowercase letters, digits, '-' or '_', "
            "starting with a letter"
        )
    if value in RESERVED_IFNAMES:
        raise ValueError(f"{value!r} is a name the kernel reserves")
    return value

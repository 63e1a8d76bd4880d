"""Validation of the names users give things (DESIGN.md §8)."""

from __future__ import annotations

import hashlib
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


# wg-quick takes the interface name from the file name and refuses any that is not this.
WG_QUICK_NAME_RE = re.compile(r"^[a-zA-Z0-9_=+.-]{1,15}$")


def config_file_name(interface: str, peer: str) -> str:
    """A client config's file name whose stem wg-quick accepts as an interface name.

    `<interface>-<peer>` where it fits in 15 characters; else its first ten and a short hash
    of the whole, so two long names on one interface still give different files."""
    stem = f"{interface}-{peer}"
    if not WG_QUICK_NAME_RE.fullmatch(stem):
        digest = hashlib.sha256(stem.encode()).hexdigest()[:4]
        stem = f"{stem[:10].rstrip('-_')}-{digest}"
    return f"{stem}.conf"


def scoped_name(name: str, tenant: str | None) -> str:
    """The fleet-wide name of a tenant-owned object (an nft chain, a resolver policy):
    names are unique per tenant only, and "." is in neither a name nor a tenant's name."""
    return name if tenant is None else f"{name}.{tenant}"

"""Validation of the names users give things (DESIGN.md §8)."""

from __future__ import annotations

import hashlib
import re
import unicodedata

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


DISPLAY_MAX = 64


def check_display_name(value: str) -> str:
    """A name as people write it: any letters, spaces, capitals; no control characters."""
    text = " ".join(value.split())
    if not text:
        raise ValueError("enter a name, like Dad's Laptop")
    if len(text) > DISPLAY_MAX:
        raise ValueError(f"at most {DISPLAY_MAX} characters")
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise ValueError("no control characters")
    return text


def slugify(display: str, fallback: str = "peer") -> str:
    """The slug of a display name: "Dad's Laptop" -> "dads-laptop", "Grandma" -> "grandma",
    "Ömer's iPhone" -> "omers-iphone"; a name with no Latin letter or digit left gives
    `fallback`. The result passes check_name (at most 32 characters)."""
    ascii_text = unicodedata.normalize("NFKD", display).encode("ascii", "ignore").decode()
    ascii_text = ascii_text.lower().replace("'", "")  # a typographic one is gone already
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:32].rstrip("-")
    return slug or fallback


def unique_slug(base: str, taken: set[str]) -> str:
    """`base`, or `base-2`, `base-3`... the first not in `taken`, within 32 characters."""
    if base not in taken:
        return base
    number = 2
    while True:
        suffix = f"-{number}"
        candidate = base[: 32 - len(suffix)].rstrip("-_") + suffix
        if candidate not in taken:
            return candidate
        number += 1

"""Links and addresses through iproute2's JSON output."""

from __future__ import annotations

import ipaddress
import json
from typing import Any, NamedTuple

from wirewarden.dataplane.run import CommandError, run
from wirewarden.domain.state import ObservedLink


def _all_links() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(run(["ip", "-j", "address", "show"]).stdout or "[]")
    return entries


def observe_links(names: set[str]) -> dict[str, ObservedLink]:
    """The named links that exist, with state, MTU and addresses, in one `ip` call."""
    if not names:
        return {}
    return {e["ifname"]: _link(e) for e in _all_links() if e.get("ifname") in names}


class HostLinks(NamedTuple):
    ours: dict[str, ObservedLink]  # the named links, as observe_links gives them
    # Networks of every other link: addresses and routes, default routes aside (they
    # overlap everything).
    networks: tuple[str, ...]
    names: frozenset[str]  # every link of the host


def observe_host(names: set[str]) -> HostLinks:
    entries = _all_links()
    found = {e["ifname"]: _link(e) for e in entries if e.get("ifname") in names}
    nets = {
        str(ipaddress.ip_interface(address).network)
        for e in entries
        if e.get("ifname") not in names
        for address in _link(e).addresses
    }
    for family in ("-4", "-6"):
        routes: list[dict[str, Any]] = json.loads(
            run(["ip", "-j", family, "route", "show"]).stdout or "[]"
        )
        nets.update(
            str(ipaddress.ip_network(r["dst"], strict=False))
            for r in routes
            if r.get("dev") not in names and r.get("dst", "default") != "default"
        )
    every = frozenset(str(e["ifname"]) for e in entries if e.get("ifname"))
    return HostLinks(found, tuple(sorted(nets)), every)


def udp_ports() -> frozenset[int]:
    """Local UDP ports some socket holds, IPv4 and IPv6, from /proc/net/udp{,6}."""
    return listening_ports("udp")


_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def listening_ports(proto: str) -> frozenset[int]:
    """Local ports some socket of this network namespace holds: every bound UDP socket, or
    TCP sockets in LISTEN, IPv4 and IPv6 (from /proc/net/{tcp,udp}{,6})."""
    ports: set[int] = set()
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            with open(table, encoding="ascii") as lines:
                next(lines, None)  # the header
                for line in lines:
                    fields = line.split()
                    if proto == "tcp" and fields[3] != _LISTEN:
                        continue
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            continue  # no IPv6 in this kernel
    return frozenset(ports)


def _link(entry: dict[str, Any]) -> ObservedLink:
    addresses = tuple(
        f"{info['local']}/{info['prefixlen']}"
        for info in entry.get("addr_info", [])
        if "local" in info
    )
    return ObservedLink(
        name=entry["ifname"],
        up="UP" in entry.get("flags", []),
        mtu=int(entry.get("mtu", 0)),
        addresses=addresses,
    )


def create_kernel_wireguard(name: str) -> None:
    run(["ip", "link", "add", "dev", name, "type", "wireguard"])


def delete_link(name: str) -> None:
    try:
        run(["ip", "link", "delete", "dev", name])
    except CommandError as exc:
        if "Cannot find device" not in exc.stderr:
            raise


def configure_link(
    name: str, mtu: int | None, add: tuple[str, ...], remove: tuple[str, ...], up: bool
) -> None:
    if mtu is not None:
        run(["ip", "link", "set", "dev", name, "mtu", str(mtu)])
    for address in remove:
        run(["ip", "address", "del", address, "dev", name])
    for address in add:
        # nodad: a fresh IPv6 address is usable at once instead of after duplicate detection.
        extra = ["nodad"] if ":" in address else []
        run(["ip", "address", "add", address, "dev", name, *extra])
    if up:
        run(["ip", "link", "set", "dev", name, "up"])


def default_route_device() -> str | None:
    routes: list[dict[str, Any]] = json.loads(
        run(["ip", "-j", "route", "show", "default"]).stdout or "[]"
    )
    for route in routes:
        if route.get("dev"):
            return str(route["dev"])
    return None


def private_networks(exclude: set[str]) -> tuple[str, ...]:
    """The networks of this host's private (LAN) addresses on links other than `exclude`."""
    entries: list[dict[str, Any]] = json.loads(run(["ip", "-j", "address", "show"]).stdout or "[]")
    nets: set[str] = set()
    for entry in entries:
        if entry.get("ifname") in exclude or "LOOPBACK" in entry.get("flags", []):
            continue
        for info in entry.get("addr_info", []):
            if "local" not in info or info.get("scope") != "global":
                continue
            net = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}").network
            if net.is_private:
                nets.add(str(net))
    return tuple(sorted(nets))

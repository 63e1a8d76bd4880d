"""The real data plane of this host: WireGuard, links, forwarding and nftables."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from wirewarden.dataplane import links, nft, sysctl, tc
from wirewarden.dataplane.run import CommandError
from wirewarden.dataplane.wireguard import WireGuard
from wirewarden.domain.firewall import Element, KernelCounts, ObservedFirewall, Quota
from wirewarden.domain.state import (
    DeviceDump,
    HostFootprint,
    ObservedInterface,
    ObservedLink,
    ObservedState,
    PeerState,
)
from wirewarden.domain.tcplan import (
    DeviceShape,
    ObservedTc,
    TcChanges,
    as_observed,
    ifb_name,
    is_ours,
    merge_observed,
)
from wirewarden.domain.wgdump import parse_all_dump

# Listing every set element and tc class costs about a second at 10,000 peers, so a pass
# trusts what our own applies wrote and looks at the kernel's per-peer state this often;
# the table skeleton (its digest), links and WireGuard peers are looked at on every pass.
SLOW_LOOK = 30.0
# A prefetch renews a look this close to going stale, so that the pass's observe() right
# after it finds the look fresh.
PREFETCH_MARGIN = 5.0


# Told of every whole dump a pass parsed, with the monotonic and wall-clock times it was
# taken (DumpCache.offer), so the collector and the pages reuse it.
DumpListener = Callable[[dict[str, DeviceDump], float, float], None]


class LinuxDataplane:
    def __init__(self, wireguard: WireGuard, slow_look: float = SLOW_LOOK) -> None:
        self.wg = wireguard
        self.dumped: DumpListener | None = None
        self.tc = tc.TcDriver()
        self.slow_look = slow_look
        self._firewall: tuple[float, ObservedFirewall] | None = None
        self._tc: dict[str, tuple[float, ObservedTc]] = {}
        self._shapes: dict[str, tuple[DeviceShape, DeviceShape]] = {}

    def _fresh(self, stamp: float, margin: float = 0.0) -> bool:
        return time.monotonic() - stamp < self.slow_look - margin

    def prefetch(self, names: Iterable[str]) -> None:
        """The slow looks a pass is due for, taken before it holds the lock (so API calls
        don't wait a second for them). A result is kept only if no write of ours replaced
        the picture meanwhile; otherwise observe() looks again under the lock."""
        cached = self._firewall
        if (cached is None or not self._fresh(cached[0], PREFETCH_MARGIN)) and nft.digest():
            found = nft.observe()
            if self._firewall is cached and found is not None:
                self._firewall = (time.monotonic(), found)
        names = list(names)
        self._look_unshaped(names, PREFETCH_MARGIN)
        for name in names:
            seen = self._tc.get(name)
            if seen is not None and self._fresh(seen[0], PREFETCH_MARGIN):
                continue
            try:
                shaping = tc.observe(name, ifb_name(name))
            except CommandError:
                continue  # no such link (yet): observe() decides what that means
            if self._tc.get(name) is seen:
                self._tc[name] = (time.monotonic(), shaping)

    def _firewall_now(self) -> ObservedFirewall | None:
        digest = nft.digest()
        cached = self._firewall
        if digest is None:
            self._firewall = None
            return None
        if cached is not None and self._fresh(cached[0]) and cached[1].digest == digest:
            return cached[1]
        found = self.observe_firewall()
        return found

    def observe(self, names: Iterable[str]) -> ObservedState:
        return self.capture(names)()

    def capture(self, names: Iterable[str]) -> Callable[[], ObservedState]:
        """Read the kernel now; the returned function makes sense of it later. The reading
        is what a pass needs at one instant under the lock; parsing 10,000 peers' dump
        lines (a tenth of a second) needn't be."""
        wanted = set(names)
        self.wg.reap()
        found, host_networks, every = links.observe_host(wanted)
        text = self.wg.dump_text() if found else ""
        at, taken = time.monotonic(), time.time()
        # Peer lines start with their interface's name too: any line names a live device.
        devices = {line.partition("\t")[0] for line in text.splitlines()}
        # A link without a WireGuard device behind it (a dead wireguard-go) counts as gone.
        for name in set(found) - devices:
            links.delete_link(name)
        live = {name: link for name, link in found.items() if name in devices}
        firewall = self._firewall_now()
        self._look_unshaped(live, 0.0)
        shaping = {name: self._tc_now(name) for name in live}
        forwarding = sysctl.forwarding_enabled()

        def parse() -> ObservedState:
            dumps = parse_all_dump(text)
            if found and self.dumped is not None:
                self.dumped(dumps, at, taken)
            interfaces = {
                name: _observed(link, dumps[name]) for name, link in live.items() if name in dumps
            }
            digest = None if firewall is None else firewall.digest
            ifbs = frozenset(name for name in every if is_ours(name))
            return ObservedState(
                interfaces, digest, forwarding, firewall or None, shaping, host_networks, ifbs
            )

        return parse

    def dump_all(self) -> dict[str, DeviceDump]:
        return self.wg.dump_all()

    def create_interface(self, name: str) -> None:
        self.wg.create(name)

    def remove_interface(self, name: str) -> None:
        self.wg.remove(name)
        self._tc.pop(name, None)  # its qdiscs went with the link

    def configure_link(
        self, name: str, mtu: int | None, add: tuple[str, ...], remove: tuple[str, ...], up: bool
    ) -> None:
        links.configure_link(name, mtu, add, remove, up)

    def configure_device(self, name: str, private_key: str, listen_port: int) -> None:
        self.wg.configure(name, private_key, listen_port)

    def set_peers(self, name: str, peers: Iterable[PeerState]) -> None:
        self.wg.set_peers(name, peers)

    def remove_peers(self, name: str, public_keys: Iterable[str]) -> None:
        self.wg.remove_peers(name, public_keys)

    def apply_firewall(
        self, script: str, elements: frozenset[Element], quotas: dict[str, int]
    ) -> None:
        self._firewall = None  # the next pass looks at what the kernel made of it
        nft.apply_ruleset(script)

    def update_firewall(
        self, script: str, elements: frozenset[Element], quotas: dict[str, int]
    ) -> None:
        self._firewall = None
        nft.apply_ruleset(script)

    def observe_firewall(self) -> ObservedFirewall | None:
        found = nft.observe()
        self._firewall = None if found is None else (time.monotonic(), found)
        return found

    def observe_quotas(self, prefix: str) -> dict[str, Quota]:
        return {k: q for k, q in nft.quotas().items() if k.startswith(prefix)}

    def observe_kernel_counts(self) -> KernelCounts:
        return nft.kernel_counts()

    def update_peer_firewall(
        self,
        script: str,
        removed: frozenset[Element],
        added: frozenset[Element],
        quotas: dict[str, int],
    ) -> None:
        try:
            nft.apply_ruleset(script)
        except CommandError:
            self._firewall = None
            raise
        if self._firewall is not None:  # keep the trusted picture in step with our write
            stamp, seen = self._firewall
            peer_quotas = {(e.value or "").strip('"') for e in removed if e.set.startswith("quota")}
            kept = {k: q for k, q in seen.quotas.items() if k not in peer_quotas}
            new = {k: Quota(k, v) for k, v in quotas.items() if k not in kept}
            elements = (seen.elements - removed) | added
            self._firewall = (stamp, ObservedFirewall(seen.digest, elements, {**kept, **new}))

    def observe_tc(self, interface: str) -> ObservedTc:
        found = tc.observe(interface, ifb_name(interface))
        self._tc[interface] = (time.monotonic(), found)
        return found

    def _look_unshaped(self, names: Iterable[str], margin: float) -> None:
        """Renew the stale looks of devices that have nothing of ours in tc from one
        listing; the others are looked at one by one (their classes and filters)."""
        stale = {
            n: seen
            for n in names
            if not (seen := self._tc.get(n)) or not self._fresh(seen[0], margin)
        }
        if not stale:
            return
        try:
            quiet = tc.unshaped(stale)
        except CommandError:
            return
        now = time.monotonic()
        for name in quiet:
            if self._tc.get(name) is stale[name]:  # no write of ours replaced it meanwhile
                self._tc[name] = (now, ObservedTc())

    def _tc_now(self, interface: str) -> ObservedTc:
        cached = self._tc.get(interface)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        return self.observe_tc(interface)

    def observe_peer_tc(self, interface: str, minors: set[int], handles: set[str]) -> ObservedTc:
        """What one peer's change needs to know: the trusted picture while it is fresh (a
        wrong one fails the apply, which drops it), else a few targeted queries."""
        cached = self._tc.get(interface)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        return tc.observe_peer(interface, ifb_name(interface), minors, handles)

    def apply_tc(
        self,
        changes: TcChanges,
        down: DeviceShape,
        up: DeviceShape,
        touched: frozenset[int] | None = None,
    ) -> None:
        try:
            self.tc.apply(changes)
        except CommandError:
            self._tc.pop(changes.interface, None)
            raise
        cached = self._tc.get(changes.interface)
        if touched is None or cached is None:
            self._tc[changes.interface] = (time.monotonic(), as_observed(down, up))
        else:  # one peer's classes changed: the rest of the picture stays as it was
            self._tc[changes.interface] = (cached[0], merge_observed(cached[1], down, up, touched))

    def local_networks(self, exclude: frozenset[str]) -> tuple[str, ...]:
        return links.private_networks(set(exclude))

    def host_footprint(self, ours: frozenset[str]) -> HostFootprint:
        devices = self.wg.dump_all()
        host = links.observe_host(set(ours))
        own_ports = {d.listen_port for name, d in devices.items() if name in ours}
        return HostFootprint(
            networks=host.networks,
            udp_ports=links.udp_ports() - {p for p in own_ports if p is not None},
            links=host.names - set(devices),
        )

    def remove_firewall(self) -> None:
        self._firewall = None
        nft.delete_table()

    def remove_ifb(self, device: str) -> None:
        # Its HTB qdisc and classes go with the link.
        links.delete_link(device)

    def enable_forwarding(self) -> None:
        sysctl.enable_forwarding()

    def default_uplink(self) -> str | None:
        return links.default_route_device()


def _observed(link: ObservedLink, dump: DeviceDump) -> ObservedInterface:
    return ObservedInterface(link, dump.private_key, dump.listen_port, dump.peers)

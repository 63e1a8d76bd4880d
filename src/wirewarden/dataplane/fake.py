"""An in-memory data plane with the real one's behaviour, for unit tests of the reconciler."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from wirewarden.dataplane.run import CommandError
from wirewarden.domain.firewall import Element, KernelCounts, ObservedFirewall, Quota
from wirewarden.domain.state import (
    DeviceDump,
    HostFootprint,
    ObservedInterface,
    ObservedLink,
    ObservedState,
    PeerState,
    PeerStats,
)
from wirewarden.domain.tcplan import DeviceShape, ObservedTc, TcChanges, as_observed, ifb_name


@dataclass
class FakeDevice:
    up: bool = False
    mtu: int = 1420
    addresses: set[str] = field(default_factory=set)
    private_key: str | None = None
    listen_port: int | None = None
    peers: dict[str, PeerState] = field(default_factory=dict)


@dataclass
class FakeDataplane:
    devices: dict[str, FakeDevice] = field(default_factory=dict)
    digest: str | None = None
    forwarding: bool = False
    uplink: str | None = "eth0"
    fail_on: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    elements: frozenset[Element] = frozenset()
    quotas: dict[str, Quota] = field(default_factory=dict)
    tc: dict[str, ObservedTc] = field(default_factory=dict)
    lans: tuple[str, ...] = ()
    # The host's own networks, busy ports and foreign links, as a test sets them.
    host: HostFootprint = field(default_factory=HostFootprint)
    shapes: dict[str, tuple[DeviceShape, DeviceShape]] = field(default_factory=dict)
    # Runtime figures `dump_all` reports, by (interface, public key); zeros where unset.
    counters: dict[tuple[str, str], PeerStats] = field(default_factory=dict)
    # What the kernel's counters (classified traffic, published ports) show, as a test
    # sets them.
    kernel_counts: KernelCounts = field(default_factory=KernelCounts)

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if what in self.fail_on:
            raise CommandError(["fake", what], f"injected failure in {what}", 1)

    def _device(self, name: str) -> FakeDevice:
        # Like `wg` and `ip` on a missing link: a command error, not a crash.
        if name not in self.devices:
            raise CommandError(["fake", name], f"{name}: No such device", 1)
        return self.devices[name]

    def prefetch(self, names: Iterable[str]) -> None:
        pass  # every look at the fake is instant

    def capture(self, names: Iterable[str]) -> Callable[[], ObservedState]:
        observed = self.observe(names)
        return lambda: observed

    def observe(self, names: Iterable[str]) -> ObservedState:
        wanted = set(names)
        interfaces = {
            name: ObservedInterface(
                ObservedLink(name, dev.up, dev.mtu, tuple(sorted(dev.addresses))),
                dev.private_key,
                dev.listen_port,
                dict(dev.peers),
            )
            for name, dev in self.devices.items()
            if name in wanted
        }
        shaping = {name: self.tc.get(name, ObservedTc()) for name in interfaces}
        return ObservedState(
            interfaces,
            self.digest,
            self.forwarding,
            self.observe_firewall(),
            shaping,
            self.host.networks,
            frozenset(ifb_name(name) for name, seen in self.tc.items() if seen.ifb),
        )

    def observe_firewall(self) -> ObservedFirewall | None:
        if self.digest is None:
            return None
        return ObservedFirewall(self.digest, self.elements, dict(self.quotas))

    def update_firewall(
        self, script: str, elements: frozenset[Element], quotas: dict[str, int]
    ) -> None:
        self._call("update_firewall")
        if self.digest is None:
            raise CommandError(["fake", "nft"], "No such file or directory: table", 1)
        self._set_layer(elements, quotas)

    def _set_layer(self, elements: frozenset[Element], quotas: dict[str, int]) -> None:
        self.elements = elements
        self.quotas = {
            name: Quota(name, limit, self.quotas[name].used if name in self.quotas else 0)
            for name, limit in quotas.items()
        }

    def observe_quotas(self, prefix: str) -> dict[str, Quota]:
        return {k: q for k, q in self.quotas.items() if k.startswith(prefix)}

    def observe_kernel_counts(self) -> KernelCounts:
        return self.kernel_counts

    def update_peer_firewall(
        self,
        script: str,
        removed: frozenset[Element],
        added: frozenset[Element],
        quotas: dict[str, int],
    ) -> None:
        self._call("update_firewall")
        if self.digest is None:
            raise CommandError(["fake", "nft"], "No such file or directory: table", 1)
        missing = removed - self.elements
        if missing:
            raise CommandError(
                ["fake", "nft"], f"No such file or directory: {sorted(missing)[0]}", 1
            )
        peer_ids = {name.split("_")[1] for name in quotas} | {
            e.value.strip('"').split("_")[1]
            for e in removed
            if e.value and e.value.startswith('"cap_')
        }
        kept = {k: q.limit for k, q in self.quotas.items() if k.split("_")[1] not in peer_ids}
        self.elements = (self.elements - removed) | added
        self._set_layer(self.elements, {**kept, **quotas})

    def observe_tc(self, interface: str) -> ObservedTc:
        return self.tc.get(interface, ObservedTc())

    def observe_peer_tc(self, interface: str, minors: set[int], handles: set[str]) -> ObservedTc:
        return self.observe_tc(interface)

    def apply_tc(
        self,
        changes: TcChanges,
        down: DeviceShape,
        up: DeviceShape,
        touched: frozenset[int] | None = None,
    ) -> None:
        self._call("apply_tc")
        self._device(changes.interface)
        if touched is not None and changes.interface in self.shapes:
            old_down, old_up = self.shapes[changes.interface]
            down = _merge(old_down, down, touched)
            up = _merge(old_up, up, touched)
        self.shapes[changes.interface] = (down, up)
        self.tc[changes.interface] = as_observed(down, up)

    def local_networks(self, exclude: frozenset[str]) -> tuple[str, ...]:
        return self.lans

    def host_footprint(self, ours: frozenset[str]) -> HostFootprint:
        return self.host

    def dump_all(self) -> dict[str, DeviceDump]:
        return {
            name: DeviceDump(
                dev.private_key,
                dev.listen_port,
                dict(dev.peers),
                {k: self.counters.get((name, k), PeerStats(None, 0, 0, 0)) for k in dev.peers},
            )
            for name, dev in self.devices.items()
        }

    def create_interface(self, name: str) -> None:
        self._call("create_interface")
        self.devices.setdefault(name, FakeDevice())  # as the real driver: an existing one stays

    def remove_interface(self, name: str) -> None:
        self._call("remove_interface")
        self.devices.pop(name, None)
        # As in the kernel: the link's own qdiscs go, its IFB (a link of its own) stays.
        if name in self.tc:
            self.tc[name] = replace(self.tc[name], down=None, redirect=False)

    def remove_ifb(self, device: str) -> None:
        self._call("remove_ifb")
        for name, seen in list(self.tc.items()):
            if ifb_name(name) == device:
                self.tc[name] = replace(seen, up=None, ifb=False)

    def configure_link(
        self, name: str, mtu: int | None, add: tuple[str, ...], remove: tuple[str, ...], up: bool
    ) -> None:
        self._call("configure_link")
        dev = self._device(name)
        dev.mtu = mtu if mtu is not None else dev.mtu
        dev.addresses = (dev.addresses - set(remove)) | set(add)
        dev.up = dev.up or up

    def configure_device(self, name: str, private_key: str, listen_port: int) -> None:
        self._call("configure_device")
        self._device(name).private_key = private_key
        self._device(name).listen_port = listen_port

    def set_peers(self, name: str, peers: Iterable[PeerState]) -> None:
        self._call("set_peers")
        dev = self._device(name)
        for peer in peers:
            # Cryptokey routing, as in WireGuard: an address has one owner, so one peer
            # taking it takes it from the other (tests/contract checks the kernel agrees).
            taken = set(peer.allowed_ips)
            for key, other in list(dev.peers.items()):
                if key != peer.public_key and taken & set(other.allowed_ips):
                    kept = tuple(a for a in other.allowed_ips if a not in taken)
                    dev.peers[key] = replace(other, allowed_ips=kept)
            dev.peers[peer.public_key] = peer

    def remove_peers(self, name: str, public_keys: Iterable[str]) -> None:
        self._call("remove_peers")
        dev = self._device(name)
        for key in public_keys:
            dev.peers.pop(key, None)

    def apply_firewall(
        self,
        script: str,
        elements: frozenset[Element] = frozenset(),
        quotas: dict[str, int] | None = None,
    ) -> None:
        self._call("apply_firewall")
        self.digest = script.split('comment "wirewarden ')[1].split('"')[0]
        self._set_layer(elements, quotas or {})

    def remove_firewall(self) -> None:
        self._call("remove_firewall")
        self.digest = None
        self.elements, self.quotas = frozenset(), {}

    def enable_forwarding(self) -> None:
        self._call("enable_forwarding")
        self.forwarding = True

    def default_uplink(self) -> str | None:
        return self.uplink


def _merge(old: DeviceShape, new: DeviceShape, touched: frozenset[int]) -> DeviceShape:
    kept = {m: c for m, c in old.classes.items() if m not in touched}
    return DeviceShape(old.device, old.match, {**kept, **new.classes})

"""The real data plane of this host: WireGuard, links, forwarding and nftables."""

from __future__ import annotations

from collections.abc import Iterable

from wirewarden.dataplane import links, nft, sysctl, tc
from wirewarden.dataplane.wireguard import WireGuard
from wirewarden.domain.firewall import Element, ObservedFirewall, Quota
from wirewarden.domain.state import (
    DeviceDump,
    ObservedInterface,
    ObservedLink,
    ObservedState,
    PeerState,
)
from wirewarden.domain.tcplan import DeviceShape, ObservedTc, TcChanges, ifb_name


class LinuxDataplane:
    def __init__(self, wireguard: WireGuard) -> None:
        self.wg = wireguard
        self.tc = tc.TcDriver()

    def observe(self, names: Iterable[str]) -> ObservedState:
        wanted = set(names)
        self.wg.reap()
        found = links.observe_links(wanted)
        dumps = self.wg.dump_all() if found else {}
        interfaces = {
            name: _observed(link, dumps[name])
            for name, link in found.items()
            # A link without a WireGuard device behind it (a dead wireguard-go) counts as gone.
            if name in dumps
        }
        gone_links = set(found) - set(interfaces)
        for name in gone_links:
            links.delete_link(name)
        firewall = nft.observe()
        shaping = {name: self.observe_tc(name) for name in interfaces}
        digest = None if firewall is None else firewall.digest
        return ObservedState(
            interfaces, digest, sysctl.forwarding_enabled(), firewall or None, shaping
        )

    def dump_all(self) -> dict[str, DeviceDump]:
        return self.wg.dump_all()

    def create_interface(self, name: str) -> None:
        self.wg.create(name)

    def remove_interface(self, name: str) -> None:
        self.wg.remove(name)

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
        nft.apply_ruleset(script)

    def update_firewall(
        self, script: str, elements: frozenset[Element], quotas: dict[str, int]
    ) -> None:
        nft.apply_ruleset(script)

    def observe_firewall(self) -> ObservedFirewall | None:
        return nft.observe()

    def observe_quotas(self, prefix: str) -> dict[str, Quota]:
        return {k: q for k, q in nft.quotas().items() if k.startswith(prefix)}

    def update_peer_firewall(
        self,
        script: str,
        removed: frozenset[Element],
        added: frozenset[Element],
        quotas: dict[str, int],
    ) -> None:
        nft.apply_ruleset(script)

    def observe_tc(self, interface: str) -> ObservedTc:
        return tc.observe(interface, ifb_name(interface))

    def apply_tc(
        self,
        changes: TcChanges,
        down: DeviceShape,
        up: DeviceShape,
        touched: frozenset[int] | None = None,
    ) -> None:
        self.tc.apply(changes)

    def local_networks(self, exclude: frozenset[str]) -> tuple[str, ...]:
        return links.private_networks(set(exclude))

    def remove_firewall(self) -> None:
        nft.delete_table()

    def enable_forwarding(self) -> None:
        sysctl.enable_forwarding()

    def default_uplink(self) -> str | None:
        return links.default_route_device()


def _observed(link: ObservedLink, dump: DeviceDump) -> ObservedInterface:
    return ObservedInterface(link, dump.private_key, dump.listen_port, dump.peers)

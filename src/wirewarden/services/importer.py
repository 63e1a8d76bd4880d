"""Adopting an existing wg-quick server config: the interface, its key and its peers."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from wirewarden.domain.names import NAME_RE
from wirewarden.domain.wgconf import ConfigParseError, WgQuickConfig, WgQuickPeer, parse_wg_quick
from wirewarden.services.applier import INTERFACES, Change
from wirewarden.services.context import Actor
from wirewarden.services.errors import Invalid, ServiceError
from wirewarden.services.interfaces import InterfaceService
from wirewarden.services.peers import PeerService
from wirewarden.services.schemas import InterfaceCreate, PeerCreate


@dataclass
class ImportResult:
    interface: str
    peers: int
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _PlannedPeer:
    body: PeerCreate
    preshared_key: str | None


class Importer:
    def __init__(self, interfaces: InterfaceService, peers: PeerService) -> None:
        self.interfaces, self.peers = interfaces, peers

    def run(self, name: str, text: str, endpoint: str | None, actor: Actor) -> ImportResult:
        try:
            config = parse_wg_quick(text)
        except ConfigParseError as exc:
            raise Invalid(str(exc), exc.field or "file") from exc
        body, planned, warnings = self.plan(name, config, endpoint)
        deps = self.interfaces.deps
        # Under the data-plane lock and reconciled only once the peers are in: a pass over the
        # interface without its peers would remove a running config's peers as zombies and
        # cut their tunnels (another process's pass replans after the lock: the revision moved).
        with deps.applier.turn():
            # Everything is validated before anything is written, so a bad peer leaves
            # nothing behind.
            self.interfaces.create(
                body, actor, private_key=config.interface.private_key, reconcile=False
            )
            try:
                for peer in planned:
                    self.peers.create(name, peer.body, actor, preshared_key=peer.preshared_key)
            except ServiceError:
                # Forget what was stored but leave the device: it may be the running tunnel
                # being adopted, and nothing was taken away from it.
                self.interfaces.delete(name, actor, teardown=False)
                raise
            deps.applier.apply(Change.of(deps.node, None, INTERFACES))
        return ImportResult(name, len(planned), warnings)

    def plan(
        self, name: str, config: WgQuickConfig, endpoint: str | None
    ) -> tuple[InterfaceCreate, list[_PlannedPeer], list[str]]:
        iface = config.interface
        warnings = [
            f"{key} is not imported: WireWarden manages routing and firewall itself"
            for key in iface.ignored
        ]
        try:
            body = InterfaceCreate(
                name=name,
                address=", ".join(iface.addresses),
                listen_port=iface.listen_port,
                endpoint=endpoint,
                dns=", ".join(iface.dns),
                mtu=iface.mtu or 1420,
            )
        except ValidationError as exc:
            raise Invalid(_first_error(exc), "interface") from exc
        networks = [ipaddress.ip_interface(a).network for a in iface.addresses]
        names: set[str] = set()
        planned = [
            self._peer(p, i, networks, names, warnings) for i, p in enumerate(config.peers, 1)
        ]
        return body, planned, warnings

    def _peer(
        self,
        peer: WgQuickPeer,
        number: int,
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
        names: set[str],
        warnings: list[str],
    ) -> _PlannedPeer:
        own, routed = _split_allowed(peer.allowed_ips, networks)
        name = _unique_name(peer.name, number, names)
        if not any(":" not in a for a in own):
            warnings.append(
                f"peer {name} had no IPv4 address in the interface network: one was allocated"
            )
        try:
            body = PeerCreate(
                name=name,
                address=", ".join(own) or None,
                routed_ips=", ".join(routed),
                public_key=peer.public_key,
            )
        except ValidationError as exc:
            raise Invalid(f"peer {name}: {_first_error(exc)}", "peers") from exc
        return _PlannedPeer(body, peer.preshared_key)


def _split_allowed(
    allowed: tuple[str, ...], networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> tuple[list[str], list[str]]:
    own: list[str] = []
    routed: list[str] = []
    for text in allowed:
        net = ipaddress.ip_network(text)
        inside = any(net.version == n.version and net.subnet_of(n) for n in networks)  # type: ignore[arg-type]
        family_taken = any((":" in a) == (net.version == 6) for a in own)
        if inside and net.prefixlen == net.max_prefixlen and not family_taken:
            own.append(str(net.network_address))
        else:
            routed.append(text)
    return own, routed


def _unique_name(written: str | None, number: int, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_-]+", "-", (written or "").lower()).strip("-_")[:28] or f"peer{number}"
    if not NAME_RE.fullmatch(base):
        base = f"peer{number}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"

"""What the reconciler can ask of the data plane."""

from __future__ import annotations

from dataclasses import dataclass

from wirewarden.domain.firewall import Element
from wirewarden.domain.state import PeerState
from wirewarden.domain.tcplan import DeviceShape, TcChanges


@dataclass(frozen=True)
class CreateInterface:
    name: str


@dataclass(frozen=True)
class Refuse:
    """Leave an interface as it is: applying it would take something of the host's."""

    name: str
    reason: str


@dataclass(frozen=True)
class RemoveInterface:
    name: str


@dataclass(frozen=True)
class ConfigureLink:
    name: str
    mtu: int | None
    add_addresses: tuple[str, ...]
    remove_addresses: tuple[str, ...]
    bring_up: bool


@dataclass(frozen=True)
class ConfigureDevice:
    name: str
    private_key: str
    listen_port: int


@dataclass(frozen=True)
class SetPeers:
    name: str
    peers: tuple[PeerState, ...]


@dataclass(frozen=True)
class RemovePeers:
    name: str
    public_keys: tuple[str, ...]


@dataclass(frozen=True)
class ApplyFirewall:
    """The whole table in one transaction (the structured fields serve the in-memory fake)."""

    script: str
    digest: str
    elements: frozenset[Element] = frozenset()
    quotas: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class UpdateFirewall:
    """Per-peer elements and quotas changed in place: `script` is one `nft -f` transaction."""

    script: str
    elements: frozenset[Element] = frozenset()
    quotas: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ApplyTc:
    name: str  # the WireGuard interface
    changes: TcChanges
    down: DeviceShape
    up: DeviceShape


@dataclass(frozen=True)
class RemoveIfb:
    """An IFB device of ours whose interface is gone (or no longer shapes upload)."""

    device: str


@dataclass(frozen=True)
class RemoveFirewall:
    """Drop our table: no interface is left for its rules to serve."""


@dataclass(frozen=True)
class EnableForwarding:
    pass


Action = (
    Refuse
    | CreateInterface
    | RemoveInterface
    | ConfigureLink
    | ConfigureDevice
    | SetPeers
    | RemovePeers
    | ApplyFirewall
    | UpdateFirewall
    | ApplyTc
    | RemoveIfb
    | RemoveFirewall
    | EnableForwarding
)


def interface_of(action: Action) -> str | None:
    """The interface an action belongs to, to attribute failures."""
    return getattr(action, "name", None)

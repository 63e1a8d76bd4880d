"""Parser for `wg show all dump` (tab-separated, one interface line then its peers)."""

from __future__ import annotations

from wirewarden.domain.state import DeviceDump, PeerState, PeerStats

_NONE = "(none)"


def _opt(value: str) -> str | None:
    return None if value in (_NONE, "") else value


def _keepalive(value: str) -> int | None:
    return None if value in ("off", "0", "") else int(value)


def parse_all_dump(text: str) -> dict[str, DeviceDump]:
    """Parse `wg show all dump`: 5 fields for an interface, 9 for a peer."""
    devices: dict[str, DeviceDump] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 5:
            name, private_key, _public, port, _fwmark = fields
            devices[name] = DeviceDump(_opt(private_key), int(port) or None, {}, {})
        elif len(fields) == 9 and fields[0] in devices:
            _add_peer(devices[fields[0]], fields[1:])
    return devices


def _add_peer(device: DeviceDump, fields: list[str]) -> None:
    key, psk, endpoint, allowed, handshake, rx, tx, keepalive = fields
    ips = () if allowed == _NONE else tuple(filter(None, allowed.split(",")))
    device.peers[key] = PeerState(key, ips, _opt(psk), _keepalive(keepalive))
    device.stats[key] = PeerStats(_opt(endpoint), int(handshake), int(rx), int(tx))

"""systemd units for `wirewarden serve` and `wirewarden agent` (pure).

The unit text is rendered from plain values; `wirewarden service install` (cli/service.py)
finds the executable, writes the file and runs systemctl. packaging/systemd/ holds the same
units rendered with the defaults below (a test keeps them equal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Role = Literal["serve", "agent"]
ROLES: tuple[Role, ...] = ("serve", "agent")
DEFAULT_EXECUTABLE = "/usr/local/bin/wirewarden"  # where `pip install` as root puts it
STATE_ROOT = "/var/lib/"
ENV_DIR = "/etc/wirewarden"
# Everything serve and the agent do to the host is networking: links, WireGuard (and the
# TUN device of wireguard-go), nftables, tc, conntrack (NET_ADMIN); ping-style sockets of
# the health checks (NET_RAW); DNS on port 53 of each gateway (NET_BIND_SERVICE). Root
# keeps owning /var/run/wireguard and the data dir, but holds only these capabilities.
CAPABILITIES = "CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE"
# No whitespace, quotes, backslashes or `%` (systemd specifiers): a path is written into
# the unit as it is, and must not be able to add a line or a second argument.
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._+@:/-]*")


class UnitError(ValueError):
    """A value the unit cannot carry as it is."""


@dataclass(frozen=True)
class _RoleText:
    unit_name: str
    description: str
    state_name: str
    env_file: str
    note: str


_ROLES: dict[Role, _RoleText] = {
    "serve": _RoleText(
        unit_name="wirewarden.service",
        description="WireWarden WireGuard VPN control plane (API, dashboard, reconciler)",
        state_name="wirewarden",
        env_file="wirewarden.env",
        note="One VPN server on its own (or a fleet's control plane). Settings such as\n"
        "# WIREWARDEN_HTTP go into the environment file, one VAR=value a line.",
    ),
    "agent": _RoleText(
        unit_name="wirewarden-agent.service",
        description="WireWarden fleet node agent (reconciles this node for a control plane)",
        state_name="wirewarden-agent",
        env_file="agent.env",
        note="For fleet nodes only: the agent dials the control plane and keeps this node's\n"
        "# tunnels equal to its desired state. The environment file (mode 0600) holds\n"
        "# WIREWARDEN_AGENT_SERVER=https://... and, for the first start,\n"
        "# WIREWARDEN_AGENT_JOIN_TOKEN=... from `wirewarden node add`.",
    ),
}


def unit_name(role: Role) -> str:
    return _ROLES[role].unit_name


def default_data_dir(role: Role) -> str:
    return STATE_ROOT + _ROLES[role].state_name


def render_unit(role: Role, *, executable: str, data_dir: str | None = None) -> str:
    """The unit file text for `role`, running `executable` with its data in `data_dir`
    (default /var/lib/wirewarden or /var/lib/wirewarden-agent)."""
    text = _ROLES[role]
    data = data_dir or default_data_dir(role)
    for what, value in (("executable", executable), ("data dir", data)):
        if not _SAFE_PATH.fullmatch(value) or "/../" in f"{value}/":
            raise UnitError(
                f"{what} {value!r} must be an absolute path of letters, digits and ._+@:/-"
            )
    return "\n".join(
        [
            f"# {text.note}",
            "# Written by `wirewarden service install`; see docs/install.md.",
            "[Unit]",
            f"Description={text.description}",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=exec",
            f"ExecStart={executable} {role}",
            f"Environment=WIREWARDEN_DATA_DIR={data}",
            f"EnvironmentFile=-{ENV_DIR}/{text.env_file}",
            *_state_directory(data),
            "Restart=on-failure",
            "RestartSec=5s",
            *_refused(role),
            "# wireguard-go carries the tunnels and outlives a stop or restart (the next",
            "# start adopts them): stop signals go to wirewarden alone, which stops its",
            "# other children (Unbound, workers) itself.",
            "KillMode=process",
            "# Root (for /var/run/wireguard and the data dir) with networking powers only.",
            f"CapabilityBoundingSet={CAPABILITIES}",
            f"AmbientCapabilities={CAPABILITIES}",
            "# The TUN device of wireguard-go, besides /dev/null and the like.",
            "DeviceAllow=/dev/net/tun rw",
            "NoNewPrivileges=yes",
            "ProtectSystem=full",
            "PrivateTmp=yes",
            "LimitNOFILE=65536",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def _refused(role: Role) -> list[str]:
    if role != "agent":
        return []
    # 78 (EX_CONFIG): the control plane refused this node's credential or join token;
    # restarting cannot help until the operator enrols it again.
    return ["RestartPreventExitStatus=78"]


def _state_directory(data_dir: str) -> list[str]:
    """systemd makes a data dir under /var/lib itself (root's, 0700); one elsewhere is
    made by wirewarden on its first start."""
    name = data_dir.removeprefix(STATE_ROOT).strip("/")
    if not data_dir.startswith(STATE_ROOT) or not name:
        return []
    return [f"StateDirectory={name}", "StateDirectoryMode=0700"]

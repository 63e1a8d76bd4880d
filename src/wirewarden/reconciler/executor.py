"""The thin executor: applies planned actions, one interface's failure not stopping others."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import assert_never

from wirewarden.reconciler.actions import (
    Action,
    ApplyFirewall,
    ApplyTc,
    ConfigureDevice,
    ConfigureLink,
    CreateInterface,
    EnableForwarding,
    Refuse,
    RemoveFirewall,
    RemoveIfb,
    RemoveInterface,
    RemovePeers,
    SetPeers,
    UpdateFirewall,
    interface_of,
)
from wirewarden.reconciler.ports import Dataplane

log = logging.getLogger(__name__)
GLOBAL = ""  # key of failures that belong to no interface (firewall, forwarding)


@dataclass
class Report:
    applied: list[Action] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    # Seconds the whole pass took (observe, plan, apply), set by the reconciler.
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


def execute(dataplane: Dataplane, actions: list[Action]) -> Report:
    report = Report()
    for action in actions:
        scope = interface_of(action) or GLOBAL
        if scope in report.errors:
            continue  # later steps of a failed interface would fail the same way
        try:
            apply_one(dataplane, action)
        except Exception as exc:  # a driver error must not stop the other interfaces
            log.warning("reconcile %s failed: %s", type(action).__name__, exc)
            report.errors[scope] = str(exc)
        else:
            report.applied.append(action)
    return report


class Refused(Exception):
    """The planner would not apply an interface (its reason is the message)."""


def apply_one(dp: Dataplane, action: Action) -> None:
    match action:
        case Refuse(_name, reason):
            raise Refused(reason)
        case CreateInterface(name):
            dp.create_interface(name)
        case RemoveInterface(name):
            dp.remove_interface(name)
        case ConfigureLink(name, mtu, add, remove, up):
            dp.configure_link(name, mtu, add, remove, up)
        case ConfigureDevice(name, key, port):
            dp.configure_device(name, key, port)
        case SetPeers(name, peers):
            dp.set_peers(name, peers)
        case RemovePeers(name, keys):
            dp.remove_peers(name, keys)
        case ApplyFirewall(script, _digest, elements, quotas):
            dp.apply_firewall(script, elements, dict(quotas))
        case UpdateFirewall(script, elements, quotas):
            dp.update_firewall(script, elements, dict(quotas))
        case ApplyTc(_name, changes, down, up):
            dp.apply_tc(changes, down, up)
        case RemoveIfb(device):
            dp.remove_ifb(device)
        case RemoveFirewall():
            dp.remove_firewall()
        case EnableForwarding():
            dp.enable_forwarding()
        case _:
            # mypy proves every Action is matched above: a new action type that is not
            # is a type error here, not a step the executor skips without a word.
            assert_never(action)

"""The fleet protocol, version 1: the node state document and the messages (docs/fleet.md).

Both ends use this module: the control plane's agent endpoint and the agent. Messages are
JSON objects with a `type`; unknown fields are refused (an agent is a trust boundary and
a newer peer says so by its version, not by fields the other end would ignore).

A node's state travels as a document: `NodeState` dumped to JSON, with the firewall's
per-peer policies keyed by peer id, so that a change to one peer is a patch naming one
peer (domain/statediff.py) whatever the number of peers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from wirewarden.domain.dnsstate import Client, DnsDirectory
from wirewarden.domain.exposure import Forward
from wirewarden.domain.policy import PeerPolicy
from wirewarden.domain.state import DesiredState, PeerState
from wirewarden.domain.statediff import Document, diff, digest
from wirewarden.domain.vhost import NodeNames

VERSION = 1
# Agents authenticate with these (docs/fleet.md); the prefixes let a leaked string be
# recognised, and say which of the two it is.
JOIN_TOKEN_PREFIX = "wwj_"  # noqa: S105 (a prefix, not a secret)
CREDENTIAL_PREFIX = "wwn_"
# WebSocket close codes (4000-4999 are the application's): the credential is not (or no
# longer) valid, so the agent stops retrying with it; the message broke the protocol.
CLOSE_REVOKED = 4401
CLOSE_PROTOCOL = 4400
# The tunnel API an agent serves on its gateways is relayed to the control plane under
# this path with the node credential; these headers say which address pair the peer's
# connection had, and the answer to a change the node's revision after it.
TUNNEL_PATH = "/agent/tunnel"
GATEWAY_HEADER = "x-wirewarden-gateway"
SOURCE_HEADER = "x-wirewarden-source"
REVISION_HEADER = "x-wirewarden-revision"


class ProtocolError(ValueError):
    """A message or document the other end should not have sent; says what was wrong."""


def refusal(exc: ValidationError, what: str = "") -> ProtocolError:
    """The first thing pydantic found wrong, naming where (`what` where no place is)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or what
    return ProtocolError(f"{where}: {first['msg']}")


@dataclass(frozen=True)
class NodeState:
    """Everything a node's runtime needs to converge: its data plane's desired state and
    what its DNS resolver serves (None where the node filters no DNS)."""

    desired: DesiredState
    dns: DnsDirectory | None = None


@cache
def _state_adapter() -> TypeAdapter[NodeState]:
    return TypeAdapter(NodeState)


def to_document(state: NodeState) -> Document:
    """The JSON document of a state. It holds no null (a merge patch cannot carry one:
    None fields are left out) and no order that depends on the process (sets sorted), so
    equal states give equal documents, and equal digests, on both ends."""
    doc: Document = _state_adapter().dump_python(state, mode="json", exclude_none=True)
    desired = doc["desired"]
    desired["managed"] = sorted(desired["managed"])
    policy = desired["policy"]
    policy["peers"] = {peer_key(p): p for p in policy["peers"]}
    return doc


def from_document(doc: Document) -> NodeState:
    """The state a document describes; raises ProtocolError naming what is wrong."""
    try:
        desired = dict(doc["desired"])
        policy = dict(desired["policy"])
        peers = policy["peers"]
        if not isinstance(peers, dict):
            raise ProtocolError("desired.policy.peers: an object keyed by peer id")
        policy["peers"] = sorted(peers.values(), key=lambda p: int(p["peer_id"]))
        desired["policy"] = policy
        # The one optional field without a default (None: no uplink known).
        desired.setdefault("uplink", None)
        return _state_adapter().validate_python({**doc, "desired": desired})
    except ProtocolError:
        raise
    except ValidationError as exc:
        raise refusal(exc) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"not a node state document ({exc})") from exc


@dataclass(frozen=True)
class PeerChanges:
    """What a patch that touches peers only changed: each WireGuard peer set or removed
    (interface, public key, new state or None), each policy replaced (old, new), and the
    published ports (all of them before and after; None: unchanged)."""

    peers: tuple[tuple[str, str, PeerState | None], ...] = ()
    policies: tuple[tuple[PeerPolicy | None, PeerPolicy | None], ...] = ()
    forwards: tuple[tuple[Forward, ...], tuple[Forward, ...]] | None = None


@cache
def _peer_adapter() -> TypeAdapter[PeerState]:
    return TypeAdapter(PeerState)


@cache
def _policy_adapter() -> TypeAdapter[PeerPolicy]:
    return TypeAdapter(PeerPolicy)


@cache
def _forwards_adapter() -> TypeAdapter[tuple[Forward, ...]]:
    return TypeAdapter(tuple[Forward, ...])


@cache
def _names_adapter() -> TypeAdapter[NodeNames | None]:
    return TypeAdapter(NodeNames | None)


def advance_state(
    state: NodeState, doc: Document, change: Document
) -> tuple[NodeState, PeerChanges] | None:
    """The state of `doc` (the document `change` made) built from `state` at the cost of
    the peers the change names, not of every peer; None when the change touches more
    than peers and the revision (rebuild with `from_document`). Raises ProtocolError."""
    desired_change = change.get("desired")
    dns_change = change.get("dns", {})
    if set(change) - {"desired", "dns"} or not isinstance(desired_change, dict):
        return None
    # The resolver's directory carries the node's revision: that alone may move.
    if not isinstance(dns_change, dict) or set(dns_change) - {"revision"}:
        return None
    dns = state.dns
    if "revision" in dns_change:
        if dns is None:
            return None
        dns = replace(dns, revision=int(dns_change["revision"]))
    if set(desired_change) - {"revision", "interfaces", "policy", "forwards", "names"}:
        return None
    policy_change = desired_change.get("policy", {})
    interfaces_change = desired_change.get("interfaces", {})
    if set(policy_change) - {"peers"} or not isinstance(interfaces_change, dict):
        return None
    desired = state.desired
    if any(
        name not in desired.interfaces or set(part) - {"peers"}
        for name, part in interfaces_change.items()
    ):
        return None
    try:
        moved = "forwards" in desired_change
        new = _advanced(desired, dns, doc["desired"], interfaces_change, policy_change, moved)
        if "names" not in desired_change:  # a name is its node's front's, not the kernel's
            return new
        advanced, changes = new
        names = _names_adapter().validate_python(doc["desired"]["names"])
        return replace(advanced, desired=replace(advanced.desired, names=names)), changes
    except ValidationError as exc:
        raise refusal(exc) from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise ProtocolError(f"not a node state document ({exc})") from exc


def _advanced(
    desired: DesiredState,
    dns: DnsDirectory | None,
    doc: Document,
    interfaces_change: Document,
    policy_change: Document,
    forwards_moved: bool,
) -> tuple[NodeState, PeerChanges]:
    interfaces = dict(desired.interfaces)
    peers: list[tuple[str, str, PeerState | None]] = []
    for name, part in interfaces_change.items():
        held = dict(interfaces[name].peers)
        for key in part.get("peers", {}):
            value = doc["interfaces"][name]["peers"].get(key)
            new = None if value is None else _peer_adapter().validate_python(value)
            if new is None:
                held.pop(key, None)
            else:
                held[key] = new
            peers.append((name, key, new))
        interfaces[name] = replace(interfaces[name], peers=held)
    by_id = {str(p.peer_id): p for p in desired.policy.peers}
    policies: list[tuple[PeerPolicy | None, PeerPolicy | None]] = []
    for key in policy_change.get("peers", {}):
        value = doc["policy"]["peers"].get(key)
        new_policy = None if value is None else _policy_adapter().validate_python(value)
        old = by_id.pop(key, None)
        if new_policy is not None:
            by_id[key] = new_policy
        policies.append((old, new_policy))
    ordered = tuple(sorted(by_id.values(), key=lambda p: p.peer_id))
    revision = int(doc["revision"])
    forwards = desired.forwards
    if forwards_moved:  # the patch names them: a peers-only one leaves them as they are
        forwards = _forwards_adapter().validate_python(doc["forwards"])
    new_desired = replace(
        desired,
        interfaces=interfaces,
        revision=revision,
        policy=replace(desired.policy, peers=ordered),
        forwards=forwards,
    )
    moved = (desired.forwards, forwards) if forwards != desired.forwards else None
    return NodeState(new_desired, dns), PeerChanges(tuple(peers), tuple(policies), moved)


def state_patch(old: NodeState, new: NodeState) -> Document | None:
    """The merge patch from `old`'s document to `new`'s, at the cost of the peers that
    differ (unchanged ones are the same objects when the reader made a delta read, and
    equal ones compare cheaply) rather than of dumping and comparing every peer; None
    when more than peers, DNS clients and the revision differ (diff the documents)."""
    a, b = old.desired, new.desired
    rest = ("managed", "nat", "uplink", "dns_guard", "expose_listen")
    if (
        any(getattr(a, f) != getattr(b, f) for f in rest)
        or a.interfaces.keys() != b.interfaces.keys()
    ):
        return None
    if replace(a.policy, peers=()) != replace(b.policy, peers=()):
        return None
    desired: Document = {}
    if a.revision != b.revision:
        desired["revision"] = b.revision
    interfaces: Document = {}
    for name, before in a.interfaces.items():
        after = b.interfaces[name]
        if replace(before, peers={}) != replace(after, peers={}):
            return None
        if peers := _keyed_patch(before.peers, after.peers, _peer_adapter()):
            interfaces[name] = {"peers": peers}
    if interfaces:
        desired["interfaces"] = interfaces
    if a.forwards != b.forwards:  # a mapping came or went: the list, a few entries
        desired["forwards"] = _forwards_adapter().dump_python(b.forwards, mode="json")
    if a.names != b.names:  # a name came or went: the merge patch of the few there are
        dump = _names_adapter().dump_python
        desired |= diff(
            {"names": dump(a.names, mode="json")}, {"names": dump(b.names, mode="json")}
        )
    old_policies = {str(p.peer_id): p for p in a.policy.peers}
    new_policies = {str(p.peer_id): p for p in b.policy.peers}
    if policies := _keyed_patch(old_policies, new_policies, _policy_adapter()):
        desired["policy"] = {"peers": policies}
    change: Document = {"desired": desired} if desired else {}
    if (old.dns is None) != (new.dns is None):
        return None
    if old.dns is not None and new.dns is not None:
        if replace(old.dns, revision=0, clients={}) != replace(new.dns, revision=0, clients={}):
            return None
        dns: Document = {}
        if old.dns.revision != new.dns.revision:
            dns["revision"] = new.dns.revision
        if clients := _keyed_patch(old.dns.clients, new.dns.clients, _client_adapter()):
            dns["clients"] = clients
        if dns:
            change["dns"] = dns
    return change


T = TypeVar("T")


def _keyed_patch(old: dict[str, T], new: dict[str, T], adapter: TypeAdapter[T]) -> Document:
    out: Document = {}
    for key, value in new.items():
        before = old.get(key)
        if before is value or before == value:
            continue
        now = adapter.dump_python(value, mode="json", exclude_none=True)
        # A merge patch merges objects: a field gone from the record must say so.
        was = (
            None if before is None else adapter.dump_python(before, mode="json", exclude_none=True)
        )
        out[key] = now if was is None else diff(was, now)
    for key in old.keys() - new.keys():
        out[key] = None
    return out


@cache
def _client_adapter() -> TypeAdapter[Client]:
    return TypeAdapter(Client)


def peer_key(policy: dict[str, Any]) -> str:
    """A peer's key in the document's desired.policy.peers."""
    return str(policy["peer_id"])


# ---- messages


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Revision = Annotated[int, Field(ge=0)]
Hash = Annotated[str, Field(max_length=64, pattern=r"^[0-9a-f]*$")]
Count = Annotated[int, Field(ge=0)]


class Hello(_Message):
    """The agent's first message on a connection, and its request for a resync: the
    revision and digest of the state it holds (0 and "" when it holds none)."""

    type: Literal["hello"] = "hello"
    node: str = Field(max_length=64)
    version: str = Field(max_length=64)
    protocol: int = VERSION
    revision: Revision = 0
    hash: Hash = ""


class Ack(_Message):
    """The agent applied a state: its revision, the digest of the document it now holds,
    whether the last reconcile pass left the kernel equal to it, and its failure if not."""

    type: Literal["ack"] = "ack"
    revision: Revision
    hash: Hash
    in_sync: bool
    error: str | None = Field(default=None, max_length=2000)


class Heartbeat(_Message):
    """Every 10 s: the node's load. Writes the node's status, never a revision."""

    type: Literal["heartbeat"] = "heartbeat"
    peers: Count
    online_peers: Count
    rx_bps: Count
    tx_bps: Count
    cpu_percent: float = Field(ge=0, le=100 * 1024)
    version: str = Field(max_length=64)
    uptime_s: Count


class Report(_Message):
    """What the node measured since its last report: traffic samples, DNS query-log rows,
    quota counters and classified traffic. Kept by the agent (on disk while the control
    plane is away) until a ReportAck with its seq. The control plane validates the rows
    against the node's own peers: a row naming another node's peer is dropped."""

    type: Literal["report"] = "report"
    seq: Count
    samples: list[dict[str, JsonValue]] = Field(default_factory=list)
    dns_log: list[dict[str, JsonValue]] = Field(default_factory=list)
    quotas: dict[str, Count] = Field(default_factory=dict)
    # Classified traffic: the kernel's running counters per peer address and class mark
    # that moved since the last report (the control plane stores what they moved).
    apps: list[dict[str, JsonValue]] = Field(default_factory=list)
    # Server names of classified flows (WIREWARDEN_CLASSIFY_NAMES on the node): flows per
    # address pair, class and name since the last report.
    names: list[dict[str, JsonValue]] = Field(default_factory=list)
    # Published ports' traffic: the kernel's running byte count per forward target
    # (protocol, peer address, port) that moved since the last report.
    exposed: list[dict[str, JsonValue]] = Field(default_factory=list)


class Snapshot(_Message):
    """The node's whole state at a revision."""

    type: Literal["snapshot"] = "snapshot"
    revision: Revision
    hash: Hash
    state: dict[str, Any]


class Delta(_Message):
    """The change from revision `base` to `revision`: apply only on `base`, and only keep
    the result if it digests to `hash` (else send Hello again for a snapshot)."""

    type: Literal["delta"] = "delta"
    base: Revision
    revision: Revision
    hash: Hash
    patch: dict[str, Any]


class Current(_Message):
    """Nothing to change: the node's state is at this revision and digest."""

    type: Literal["current"] = "current"
    revision: Revision
    hash: Hash


class ReportAck(_Message):
    type: Literal["report_ack"] = "report_ack"
    seq: Count


AgentMessage = Annotated[Hello | Ack | Heartbeat | Report, Field(discriminator="type")]
ServerMessage = Annotated[Snapshot | Delta | Current | ReportAck, Field(discriminator="type")]


@cache
def _agent_adapter() -> TypeAdapter[Hello | Ack | Heartbeat | Report]:
    return TypeAdapter(AgentMessage)


@cache
def _server_adapter() -> TypeAdapter[Snapshot | Delta | Current | ReportAck]:
    return TypeAdapter(ServerMessage)


def encode(message: _Message) -> str:
    return message.model_dump_json()


def decode_from_agent(text: str | bytes) -> Hello | Ack | Heartbeat | Report:
    """A message an agent sent; raises ProtocolError naming the field at fault."""
    return _decode(_agent_adapter(), text)


def decode_from_server(text: str | bytes) -> Snapshot | Delta | Current | ReportAck:
    """A message the control plane sent; raises ProtocolError naming the field at fault."""
    return _decode(_server_adapter(), text)


def _decode(adapter: TypeAdapter[T], text: str | bytes) -> T:
    try:
        return adapter.validate_json(text)
    except ValidationError as exc:
        raise refusal(exc, "message") from exc


def snapshot(state: NodeState, revision: int) -> tuple[Snapshot, Document, str]:
    """A snapshot of `state`, with the document and digest the sender keeps for deltas."""
    doc = to_document(state)
    digest_ = digest(doc)
    return Snapshot(revision=revision, hash=digest_, state=doc), doc, digest_

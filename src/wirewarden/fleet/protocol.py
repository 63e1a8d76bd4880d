"""The fleet protocol, version 1: the node state document and the messages (docs/fleet.md).

Both ends use this module: the control plane's agent endpoint and the agent. Messages are
JSON objects with a `type`; unknown fields are refused (an agent is a trust boundary and
a newer peer says so by its version, not by fields the other end would ignore).

A node's state travels as a document: `NodeState` dumped to JSON, with the firewall's
per-peer policies keyed by peer id, so that a change to one peer is a patch naming one
peer (domain/statediff.py) whatever the number of peers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from wirewarden.domain.dnsstate import DnsDirectory
from wirewarden.domain.state import DesiredState
from wirewarden.domain.statediff import Document, digest

VERSION = 1
# Agents authenticate with these (docs/fleet.md); the prefixes let a leaked string be
# recognised, and say which of the two it is.
JOIN_TOKEN_PREFIX = "wwj_"  # noqa: S105 (a prefix, not a secret)
CREDENTIAL_PREFIX = "wwn_"
# WebSocket close codes (4000-4999 are the application's): the credential is not (or no
# longer) valid, so the agent stops retrying with it; the message broke the protocol.
CLOSE_REVOKED = 4401
CLOSE_PROTOCOL = 4400


class ProtocolError(ValueError):
    """A message or document the other end should not have sent; says what was wrong."""


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
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ProtocolError(f"{where}: {first['msg']}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"not a node state document ({exc})") from exc


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
    """What the node measured since its last report: traffic samples, DNS query-log rows
    and quota counters. Kept by the agent (on disk while the control plane is away) until
    a ReportAck with its seq. The control plane validates the rows against the node's own
    peers: a row naming another node's peer is dropped."""

    type: Literal["report"] = "report"
    seq: Count
    samples: list[dict[str, JsonValue]] = Field(default_factory=list)
    dns_log: list[dict[str, JsonValue]] = Field(default_factory=list)
    quotas: dict[str, Count] = Field(default_factory=dict)


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


T = TypeVar("T")


def _decode(adapter: TypeAdapter[T], text: str | bytes) -> T:
    try:
        return adapter.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "message"
        raise ProtocolError(f"{where}: {first['msg']}") from exc


def snapshot(state: NodeState, revision: int) -> tuple[Snapshot, Document, str]:
    """A snapshot of `state`, with the document and digest the sender keeps for deltas."""
    doc = to_document(state)
    digest_ = digest(doc)
    return Snapshot(revision=revision, hash=digest_, state=doc), doc, digest_

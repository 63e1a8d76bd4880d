"""What the nodes API takes and answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from wirewarden.domain.addresses import endpoint
from wirewarden.domain.names import check_name
from wirewarden.services.schemas import Strict

Region = str
MAX_TOKEN_HOURS = 24 * 30


def _region(value: str | None) -> str | None:
    return value if value is None or value == "" else check_name(value)


def _host(value: str | None) -> str | None:
    if not value:
        return None
    host, port = endpoint(value)
    if port is not None:
        raise ValueError("a host name or address, without a port")
    return host


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) != 2 or not value.isascii() or not value.isalpha():
        raise ValueError("an ISO 3166 two-letter country code, e.g. DE")
    return value.upper()


class NodePlace(Strict):
    """Where a node is: its region (placement), country, city and map position."""

    region: str | None = Field(None, description="Placement region, e.g. 'eu'")
    capacity: int | None = Field(None, ge=1, le=10_000_000, description="Peers it takes")
    country: str | None = Field(None, description="ISO 3166 code, e.g. DE")
    city: str | None = Field(None, max_length=64)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    public_host: str | None = Field(
        None, description="The node's public host name or address (names of its peers)"
    )

    _region = field_validator("region")(lambda cls, v: _region(v))
    _public_host = field_validator("public_host")(lambda cls, v: _host(v))
    _country = field_validator("country")(lambda cls, v: _country(v))


class NodeCreate(NodePlace):
    name: str
    join_token_hours: int = Field(24, ge=1, le=MAX_TOKEN_HOURS, description="Token lifetime")

    _name = field_validator("name")(lambda cls, v: check_name(v))


class NodeUpdate(NodePlace):
    drain: bool | None = Field(None, description="True: no new peers are placed here")


class JoinTokenCreate(Strict):
    hours: int = Field(24, ge=1, le=MAX_TOKEN_HOURS)


class NodeOut(BaseModel):
    name: str
    region: str
    capacity: int
    country: str | None
    city: str | None
    lat: float | None
    lon: float | None
    public_host: str | None
    drain: bool
    # This control plane's own node (`serve` runs its data plane; no agent).
    local: bool
    status: str  # pending | online | offline | draining
    last_seen: datetime | None
    peers: int
    load: float
    online_peers: int
    revision: int
    applied_revision: int
    in_sync: bool
    hash_matches: bool
    error: str | None
    rx_bps: int
    tx_bps: int
    cpu_percent: float
    version: str
    interfaces: list[str]


class JoinToken(BaseModel):
    node: str
    join_token: str = Field(description="Shown once: `wirewarden agent --join-token ...`")
    expires_at: datetime


class NodeCreated(NodeOut):
    join_token: str
    join_token_expires_at: datetime


class Enrolment(Strict):
    join_token: str = Field(max_length=200)
    version: str = Field("", max_length=32)


class Enrolled(BaseModel):
    node: str
    credential: str = Field(description="Shown once; the agent keeps it 0600")

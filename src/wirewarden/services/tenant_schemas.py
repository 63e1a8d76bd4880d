"""Tenants: inputs and outputs (DESIGN.md §5, Tenants)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from wirewarden.domain.classify.verdict import App
from wirewarden.domain.names import check_name
from wirewarden.services.schemas import (
    BLOCK_APPS_HELP,
    Csv,
    InterfaceCreate,
    InterfaceOut,
    Port,
    Strict,
)


class TenantCreate(Strict):
    name: str = Field(description="Its interface is t-<name>: at most 13 characters")
    plan: str | None = Field(None, description="A plan's name; null: no limits")
    dns_policy: str | None = Field(None, description="Its peers' DNS policy (null: default)")
    # Of its first interface (default: the next free of WIREWARDEN_TENANT_POOL / _PORTS).
    address: Csv | None = Field(None, description="e.g. '10.88.5.1/24'")
    listen_port: Port | None = None
    endpoint: str | None = Field(None, description="Public host[:port] its clients dial")
    node: str | None = Field(None, description="The node of its first interface (default: this)")

    _name = field_validator("name")(lambda cls, v: check_name(v))
    _address = field_validator("address")(InterfaceCreate._address.__func__)  # type: ignore[attr-defined]


class TenantUpdate(Strict):
    plan: str | None = Field(None, description="A plan's name; null: no limits")
    dns_policy: str | None = None
    enabled: bool | None = Field(None, description="false: every peer cut off, data kept")
    block_apps: list[App] | None = Field(
        None, description=BLOCK_APPS_HELP + " (besides its plan's and each peer's own)"
    )


class TenantOut(BaseModel):
    name: str
    plan: str | None
    dns_policy: str | None
    enabled: bool
    block_apps: list[str] = Field(default_factory=list)
    peers: int = Field(description="Peers the tenant has")
    max_peers: int | None = Field(description="Its plan's limit; null: unlimited")
    traffic_bytes: int = Field(
        0, description="Bytes its peers moved (both ways) this period: each peer's cap period"
    )
    interfaces: list[InterfaceOut]
    created_at: datetime

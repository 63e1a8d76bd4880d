"""Plans: inputs and outputs (DESIGN.md §5, Plans). Null is unlimited everywhere."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from wirewarden.domain.classify.verdict import App
from wirewarden.services.schemas import BLOCK_APPS_HELP, Bytes, Kbit, Strict

Count = Annotated[int, Field(ge=0, le=1_000_000)]
# Ports and ranges a peer may publish, e.g. "8000-8100,9000"; empty: none.
_PORTS_RE = re.compile(r"^\s*$|^\d{1,5}(-\d{1,5})?(\s*,\s*\d{1,5}(-\d{1,5})?)*$")


def check_ports(value: str) -> str:
    if not _PORTS_RE.fullmatch(value):
        raise ValueError("must be ports and ranges like '8000-8100,9000'")
    for part in filter(None, (p.strip() for p in value.split(","))):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"{part!r} is not a port range within 1-65535")
    return ",".join(p.strip() for p in value.split(",") if p.strip())


class PlanIn(Strict):
    max_peers: Count | None = Field(None, description="Peers the tenant may have")
    rate_down_kbit: Kbit | None = Field(None, description="Per peer: default and ceiling")
    rate_up_kbit: Kbit | None = Field(None, description="Per peer: default and ceiling")
    data_cap_bytes: Bytes | None = Field(None, description="Per peer: default and ceiling")
    rate_total_down_kbit: Kbit | None = Field(None, description="The whole tenant")
    rate_total_up_kbit: Kbit | None = Field(None, description="The whole tenant")
    max_mappings: Count | None = Field(None, description="Exposed services of the tenant")
    expose_ports: str | None = Field(None, max_length=255, description="e.g. 8000-8100,9000")
    block_apps: list[App] = Field(default_factory=list, description=BLOCK_APPS_HELP)

    _ports = field_validator("expose_ports")(lambda cls, v: v if v is None else check_ports(v))


class PlanOut(PlanIn):
    name: str
    tenants: list[str] = Field(default_factory=list, description="Tenants on this plan")
    updated_at: datetime | None = None


class PlanChange(BaseModel):
    """What bringing existing peers down to a lowered plan did."""

    peers_lowered: int = 0

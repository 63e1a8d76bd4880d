"""traffic metrics: per-peer and per-interface series in four tiers, counters, endpoints

Revision ID: 0005_metrics
Revises: 0006_dns
Create Date: 2026-11-23 01:23:06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_metrics"
down_revision = "0006_dns"
branch_labels = None
depends_on = None

TIERS = ("raw", "5m", "1h", "1d")
SERIES = (("peer", "peer_id", "peers"), ("interface", "interface_id", "interfaces"))


def _series_table(name: str, key: str, parent: str) -> None:
    op.create_table(
        name,
        sa.Column(key, sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("t", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("rx", sa.BigInteger(), nullable=False),
        sa.Column("tx", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            [key], [f"{parent}.id"], name=op.f(f"fk_{name}_{key}_{parent}"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(key, "t", name=op.f(f"pk_{name}")),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    op.create_table(
        "traffic_rollups",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_traffic_rollups")),
    )
    for kind, key, parent in SERIES:
        for tier in TIERS:
            _series_table(f"{kind}_traffic_{tier}", key, parent)
    op.create_table(
        "peer_counters",
        sa.Column("peer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("public_key", sa.String(length=44), nullable=False),
        sa.Column("rx", sa.BigInteger(), nullable=False),
        sa.Column("tx", sa.BigInteger(), nullable=False),
        sa.Column("handshake", sa.BigInteger(), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=True),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_id"],
            ["peers.id"],
            name=op.f("fk_peer_counters_peer_id_peers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("peer_id", name=op.f("pk_peer_counters")),
    )
    op.create_table(
        "peer_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_id"],
            ["peers.id"],
            name=op.f("fk_peer_endpoints_peer_id_peers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peer_endpoints")),
    )
    op.create_index(op.f("ix_peer_endpoints_peer_id"), "peer_endpoints", ["peer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_peer_endpoints_peer_id"), table_name="peer_endpoints")
    op.drop_table("peer_endpoints")
    op.drop_table("peer_counters")
    for kind, _key, _parent in SERIES:
        for tier in TIERS:
            op.drop_table(f"{kind}_traffic_{tier}")
    op.drop_table("traffic_rollups")

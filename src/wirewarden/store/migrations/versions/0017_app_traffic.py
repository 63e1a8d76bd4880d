"""classified traffic in the metrics store: per peer and class, the traffic tiers

Revision ID: 0018_app_traffic
Revises: 0017_expose_names
Create Date: 2026-12-04 06:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_app_traffic"
down_revision = "0017_expose_names"
branch_labels = None
depends_on = None

TIERS = ("raw", "5m", "1h", "1d")


def upgrade() -> None:
    for tier in TIERS:
        name = f"peer_app_traffic_{tier}"
        op.create_table(
            name,
            sa.Column("peer_id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("app", sa.String(length=16), nullable=False),
            sa.Column("t", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("bytes", sa.BigInteger(), nullable=False),
            sa.Column("packets", sa.BigInteger(), nullable=False),
            sa.Column("flows", sa.BigInteger(), nullable=False),
            sa.ForeignKeyConstraint(
                ["peer_id"], ["peers.id"], name=op.f(f"fk_{name}_peer_id_peers"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("peer_id", "app", "t", name=op.f(f"pk_{name}")),
            sqlite_with_rowid=False,
        )
    op.create_table(
        "app_counters",
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("mark", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("packets", sa.BigInteger(), nullable=False),
        sa.Column("flows", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("address", "mark", name=op.f("pk_app_counters")),
    )


def downgrade() -> None:
    op.drop_table("app_counters")
    for tier in TIERS:
        op.drop_table(f"peer_app_traffic_{tier}")

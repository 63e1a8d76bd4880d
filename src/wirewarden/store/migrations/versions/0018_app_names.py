"""server names of classified flows (WIREWARDEN_CLASSIFY_NAMES), per peer, class and hour

Revision ID: 0019_app_names
Revises: 0018_app_traffic
Create Date: 2026-12-04 09:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_app_names"
down_revision = "0018_app_traffic"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_names",
        sa.Column("peer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("app", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("t", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("flows", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["peers.id"], name=op.f("fk_app_names_peer_id_peers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("peer_id", "app", "name", "t", name=op.f("pk_app_names")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_app_names_t", "app_names", ["t"])


def downgrade() -> None:
    op.drop_index("ix_app_names_t", table_name="app_names")
    op.drop_table("app_names")

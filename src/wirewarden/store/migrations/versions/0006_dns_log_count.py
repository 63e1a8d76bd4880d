"""dns query log: a count per row (identical fast-path answers share one)

Revision ID: 0007_dns_log_count
Revises: 0002_accounts
Create Date: 2026-11-23 04:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_dns_log_count"
down_revision = "0002_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows written before this revision were one query each.
    with op.batch_alter_table("dns_queries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("count", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("dns_queries", schema=None) as batch_op:
        batch_op.drop_column("count")

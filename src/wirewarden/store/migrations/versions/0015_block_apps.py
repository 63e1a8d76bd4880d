"""peers, tenants and plans block classes of traffic (`block_apps`: "bittorrent,ssh")

Revision ID: 0016_block_apps
Revises: 0015_fleet
Create Date: 2026-12-04 01:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_block_apps"
down_revision = "0015_fleet"
branch_labels = None
depends_on = None


TABLES = ("peers", "tenants", "plans")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("block_apps", sa.Text(), server_default="", nullable=False)
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("block_apps")

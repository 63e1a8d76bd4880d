"""a fleet node's public host, set by the operator (names of its peers are passed there)

Revision ID: 0021_node_public_host
Revises: 0020_forwarded_bytes
Create Date: 2026-12-04 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_node_public_host"
down_revision = "0020_forwarded_bytes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("public_host", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("public_host")

"""a fleet node's published ports: the traffic its agent reports, per mapping

Revision ID: 0020_forwarded_bytes
Revises: 0019_app_names
Create Date: 2026-12-04 09:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_forwarded_bytes"
down_revision = "0019_app_names"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mappings") as batch:
        batch.add_column(sa.Column("forwarded_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mappings") as batch:
        batch.drop_column("forwarded_bytes")

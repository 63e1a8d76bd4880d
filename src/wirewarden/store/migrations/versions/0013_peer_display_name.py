"""peers get a display name ("Dad's Laptop"); `name` stays the unique slug

Revision ID: 0014_peer_display_name
Revises: 0013_audit_tenant
Create Date: 2026-12-03 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_peer_display_name"
down_revision = "0013_audit_tenant"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("peers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("peers", schema=None) as batch_op:
        batch_op.drop_column("display_name")

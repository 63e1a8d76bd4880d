"""a tenant can be disabled (its peers out of the kernel, its data kept)

Revision ID: 0011_tenant_enabled
Revises: 0010_plans
Create Date: 2026-12-03 07:25:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_tenant_enabled"
down_revision = "0010_plans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("enabled")

"""audit events name the tenant they concern, so its tenant admin reads them

Revision ID: 0013_audit_tenant
Revises: 0012_expose
Create Date: 2026-12-03 07:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_audit_tenant"
down_revision = "0012_expose"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_audit_events_tenant_id", ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_tenant_id")
        batch_op.drop_column("tenant_id")

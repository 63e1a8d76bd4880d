"""plans: the limits of a tenant (peers, per-peer and total rates, data cap, mappings)

Revision ID: 0010_plans
Revises: 0009_scoped_names
Create Date: 2026-12-03 07:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_plans"
down_revision = "0009_scoped_names"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("max_peers", sa.Integer(), nullable=True),
        sa.Column("rate_down_kbit", sa.Integer(), nullable=True),
        sa.Column("rate_up_kbit", sa.Integer(), nullable=True),
        sa.Column("data_cap_bytes", sa.BigInteger(), nullable=True),
        sa.Column("rate_total_down_kbit", sa.Integer(), nullable=True),
        sa.Column("rate_total_up_kbit", sa.Integer(), nullable=True),
        sa.Column("max_mappings", sa.Integer(), nullable=True),
        sa.Column("expose_ports", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("name", name=op.f("uq_plans_name")),
    )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tenants_plan_id"), ["plan_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_tenants_plan_id_plans"),
            "plans",
            ["plan_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tenants_plan_id_plans"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_tenants_plan_id"))
        batch_op.drop_column("plan_id")
    op.drop_table("plans")

"""network policy: ACL profiles, mesh, speed limits, data caps

Revision ID: 0004_policy
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_policy"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acl_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("default_action", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acl_profiles")),
        sa.UniqueConstraint("name", name=op.f("uq_acl_profiles_name")),
    )
    with op.batch_alter_table("peers") as batch:
        batch.add_column(
            sa.Column("acl", sa.String(length=32), server_default="full", nullable=False)
        )
        batch.add_column(sa.Column("mesh", sa.Boolean(), server_default="0", nullable=False))
        batch.add_column(sa.Column("rate_down_kbit", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rate_up_kbit", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("data_cap_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("cap_reset_day", sa.Integer(), server_default="1", nullable=False)
        )
        batch.add_column(sa.Column("cap_reset_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("cap_used_bytes", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("cap_used_period", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("peers") as batch:
        for column in (
            "cap_used_period",
            "cap_used_bytes",
            "cap_reset_at",
            "cap_reset_day",
            "data_cap_bytes",
            "rate_up_kbit",
            "rate_down_kbit",
            "mesh",
            "acl",
        ):
            batch.drop_column(column)
    op.drop_table("acl_profiles")

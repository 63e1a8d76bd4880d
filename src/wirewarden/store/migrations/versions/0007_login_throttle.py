"""sign-in attempts counted in the database; share links know their creator's account

Revision ID: 0008_login_throttle
Revises: 0007_dns_log_count
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_login_throttle"
down_revision = "0007_dns_log_count"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_share_links_created_by_id"), ["created_by_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_share_links_created_by_id_users"),
            "users",
            ["created_by_id"],
            ["id"],
            ondelete="CASCADE",
        )
    # Links made before this revision name their creator only: tie them to the account.
    op.execute(
        "UPDATE share_links SET created_by_id = "
        "(SELECT users.id FROM users WHERE users.name = share_links.created_by)"
    )


def downgrade() -> None:
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_share_links_created_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_share_links_created_by_id"))
        batch_op.drop_column("created_by_id")
    op.drop_table("login_throttle")

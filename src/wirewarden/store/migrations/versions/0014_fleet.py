"""fleet: nodes get a place and a capacity; node status, join tokens and credentials

Revision ID: 0015_fleet
Revises: 0014_peer_display_name
Create Date: 2026-12-03 09:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_fleet"
down_revision = "0014_peer_display_name"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("region", sa.String(32), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("capacity", sa.Integer(), nullable=False, server_default="1000")
        )
        batch_op.add_column(sa.Column("country", sa.String(2), nullable=True))
        batch_op.add_column(sa.Column("city", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("lat", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("lon", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("drain", sa.Boolean(), nullable=False, server_default="0"))
    op.create_table(
        "node_status",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_revision", sa.Integer(), nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("hash_matches", sa.Boolean(), nullable=False),
        sa.Column("in_sync", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("peers", sa.Integer(), nullable=False),
        sa.Column("online_peers", sa.Integer(), nullable=False),
        sa.Column("rx_bps", sa.BigInteger(), nullable=False),
        sa.Column("tx_bps", sa.BigInteger(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("uptime_s", sa.BigInteger(), nullable=False),
        sa.Column("report_seq", sa.BigInteger(), nullable=False),
        sa.Column("quotas", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name="fk_node_status_node_id_nodes", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("node_id", name="pk_node_status"),
    )
    op.create_table(
        "node_join_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name="fk_node_join_tokens_node_id_nodes", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_node_join_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_node_join_tokens_token_hash"),
    )
    op.create_index("ix_node_join_tokens_node_id", "node_join_tokens", ["node_id"])
    op.create_table(
        "node_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("credential_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name="fk_node_credentials_node_id_nodes", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_node_credentials"),
        sa.UniqueConstraint("credential_hash", name="uq_node_credentials_credential_hash"),
    )
    op.create_index("ix_node_credentials_node_id", "node_credentials", ["node_id"])


def downgrade() -> None:
    op.drop_index("ix_node_credentials_node_id", table_name="node_credentials")
    op.drop_table("node_credentials")
    op.drop_index("ix_node_join_tokens_node_id", table_name="node_join_tokens")
    op.drop_table("node_join_tokens")
    op.drop_table("node_status")
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        for column in ("drain", "lon", "lat", "city", "country", "capacity", "region"):
            batch_op.drop_column(column)

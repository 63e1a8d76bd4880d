"""expose: the ports a peer may publish, and its live mappings

Revision ID: 0012_expose
Revises: 0011_tenant_enabled
Create Date: 2026-12-03 07:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_expose"
down_revision = "0011_tenant_enabled"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("peers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expose_ports", sa.Text(), server_default="", nullable=False))
    op.create_table(
        "mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("proto", sa.String(length=3), nullable=False),
        sa.Column("remote_port", sa.Integer(), nullable=False),
        sa.Column("local_port", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_mappings_node_id_nodes"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["peers.id"], name=op.f("fk_mappings_peer_id_peers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mappings")),
        sa.UniqueConstraint("node_id", "proto", "remote_port", name="uq_mappings_node_port"),
    )
    op.create_index(op.f("ix_mappings_peer_id"), "mappings", ["peer_id"], unique=False)
    op.create_index(op.f("ix_mappings_expires_at"), "mappings", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_mappings_expires_at"), table_name="mappings")
    op.drop_index(op.f("ix_mappings_peer_id"), table_name="mappings")
    op.drop_table("mappings")
    with op.batch_alter_table("peers", schema=None) as batch_op:
        batch_op.drop_column("expose_ports")

"""expose: HTTP services by name (a mapping's hostname, TLS passed through by SNI)

Revision ID: 0017_expose_names
Revises: 0016_block_apps
Create Date: 2026-12-04 06:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_expose_names"
down_revision = "0016_block_apps"
branch_labels = None
depends_on = None

PORT_COLUMNS = ["node_id", "proto", "remote_port"]
PORTS_ONLY = sa.text("hostname IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("mappings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hostname", sa.String(length=253), nullable=True))
        batch_op.add_column(sa.Column("tls", sa.Boolean(), server_default="0", nullable=False))
        batch_op.create_unique_constraint(batch_op.f("uq_mappings_hostname"), ["hostname"])
        batch_op.drop_constraint("uq_mappings_node_port", type_="unique")
    # Names share the front listener's port: only port mappings hold one.
    op.create_index(
        "uq_mappings_node_port",
        "mappings",
        PORT_COLUMNS,
        unique=True,
        sqlite_where=PORTS_ONLY,
        postgresql_where=PORTS_ONLY,
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM mappings WHERE hostname IS NOT NULL"))
    op.drop_index("uq_mappings_node_port", table_name="mappings")
    with op.batch_alter_table("mappings", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_mappings_node_port", PORT_COLUMNS)
        batch_op.drop_constraint(batch_op.f("uq_mappings_hostname"), type_="unique")
        batch_op.drop_column("tls")
        batch_op.drop_column("hostname")

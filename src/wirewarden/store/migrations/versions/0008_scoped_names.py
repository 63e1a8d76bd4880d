"""ACL profiles and DNS policies owned by a tenant (null: global), names unique per tenant

Revision ID: 0009_scoped_names
Revises: 0008_login_throttle
Create Date: 2026-12-03 07:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_scoped_names"
down_revision = "0008_login_throttle"
branch_labels = None
depends_on = None

TABLES = ("acl_profiles", "dns_policies")
GLOBAL = sa.text("tenant_id IS NULL")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("tenant_id", sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_{table}_tenant_id"), ["tenant_id"])
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_tenant_id_tenants"),
                "tenants",
                ["tenant_id"],
                ["id"],
                ondelete="CASCADE",
            )
            batch_op.drop_constraint(f"uq_{table}_name", type_="unique")
            batch_op.create_unique_constraint(f"uq_{table}_tenant_name", ["tenant_id", "name"])
        # The rows there are global (tenant_id NULL), and a unique constraint lets NULLs
        # repeat: the global names get a partial unique index of their own.
        op.create_index(
            f"uq_{table}_global_name",
            table,
            ["name"],
            unique=True,
            sqlite_where=GLOBAL,
            postgresql_where=GLOBAL,
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"uq_{table}_global_name", table_name=table)
        # Names owned by tenants have no place in one global namespace.
        op.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id IS NOT NULL"))  # noqa: S608
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_tenant_name", type_="unique")
            batch_op.create_unique_constraint(f"uq_{table}_name", ["name"])
            batch_op.drop_constraint(
                batch_op.f(f"fk_{table}_tenant_id_tenants"), type_="foreignkey"
            )
            batch_op.drop_index(batch_op.f(f"ix_{table}_tenant_id"))
            batch_op.drop_column("tenant_id")

"""staff role index

Revision: b7e1d2f3a4c5, after fa5edd0dfcbd, made 2026-12-02.

Issue 9's load run: every bulk block or reactivation counts the bureau's active administrators (the rule that a
bureau keeps one), and without an index on the staff role that count read every user of the bureau (30 ms at 200k
clients on PostgreSQL, a sequential scan). Staff users are a handful, so a partial index on them is tiny; the status
is in it so that a planner without statistics prefers it to (bureau_id, status), which every active user shares.
"""

import sqlalchemy as sa
from alembic import op


revision = "b7e1d2f3a4c5"
down_revision = "fa5edd0dfcbd"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_users_bureau_staff_role",
        "users",
        ["bureau_id", "staff_role", "status"],
        unique=False,
        sqlite_where=sa.text("staff_role IS NOT NULL"),
        postgresql_where=sa.text("staff_role IS NOT NULL"),
    )


def downgrade():
    op.drop_index("ix_users_bureau_staff_role", table_name="users")

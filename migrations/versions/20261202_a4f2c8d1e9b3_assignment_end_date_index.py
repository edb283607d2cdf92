"""assignments by end date in the grid's order

Revision: a4f2c8d1e9b3, after 8faeb6e5ba18, made 2026-12-02.

The assignments grid lists the latest start first; its "Til og med er lik" filter read the end date's index and then
had to sort, so SQLite preferred to walk the start-date order through the whole bureau in search of the rows (8 s at
1M clients for an end date no assignment has). With the start date in the end date's index, one end date's
assignments come out of the index already in the grid's order, on both engines.
"""

from alembic import op

revision = "a4f2c8d1e9b3"
down_revision = "8faeb6e5ba18"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_package_assignments_bureau_to_from", "package_assignments", ["bureau_id", "valid_to", "valid_from"]
    )
    op.drop_index("ix_package_assignments_bureau_to", table_name="package_assignments")


def downgrade():
    op.create_index("ix_package_assignments_bureau_to", "package_assignments", ["bureau_id", "valid_to"])
    op.drop_index("ix_package_assignments_bureau_to_from", table_name="package_assignments")

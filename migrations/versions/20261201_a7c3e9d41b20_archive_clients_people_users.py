"""archive clients, people and users instead of deleting them

Revision: a7c3e9d41b20, after 51db0c39fb73, made 2026-12-01 15:20:00.
"""

import sqlalchemy as sa
from alembic import op


revision = 'a7c3e9d41b20'
down_revision = "b7c1e2d3f4a5"
branch_labels = None
depends_on = None

TABLES = ('clients', 'persons', 'users')


def upgrade():
    # Plain ADD COLUMN (no batch rebuild): rebuilding clients on SQLite would drop its demo trigger.
    for table in TABLES:
        op.add_column(table, sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # SQLite (3.35+) drops a plain column in place, so the triggers stay.
    for table in reversed(TABLES):
        op.drop_column(table, 'archived_at')

"""bureau counters and the Hjem page's indexes

Revision: 6d2e9b4c1a70, after 5c311e3a68e3, made 2026-12-02.

Hjem (issue 12) shows a bureau's clients, demo clients and active users. Counting them at a million clients reads a
whole index, so the database keeps the counts in ``bureau_counters``, maintained by triggers on ``clients`` and
``users`` (models/counters.py), filled here from the stored rows. The partial indexes bound Hjem's to-do queries
to the few rows that match: clients waiting for consent, active users with an end date, invitations not accepted,
and a bureau's jobs by status.
"""

import sqlalchemy as sa
from alembic import op

from models.counters import counter_sql, recount_sql

revision = "6d2e9b4c1a70"
down_revision = "5c311e3a68e3"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "bureau_counters",
        sa.Column("bureau_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("clients", sa.Integer(), server_default="0", nullable=False),
        sa.Column("demo_clients", sa.Integer(), server_default="0", nullable=False),
        sa.Column("active_users", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["bureau_id"], ["bureaus.id"], name=op.f("fk_bureau_counters_bureau_id_bureaus"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("bureau_id", "slot", name=op.f("pk_bureau_counters")),
    )
    pending = "consent_status = 'pending' AND archived_at IS NULL"
    op.create_index(
        "ix_clients_consent_pending",
        "clients",
        ["bureau_id", "consent_requested_at", "id"],
        unique=False,
        sqlite_where=sa.text(pending),
        postgresql_where=sa.text(pending),
    )
    active_end = "status = 'active' AND end_date IS NOT NULL"
    op.create_index(
        "ix_users_active_end_date",
        "users",
        ["bureau_id", "end_date"],
        unique=False,
        sqlite_where=sa.text(active_end),
        postgresql_where=sa.text(active_end),
    )
    open_invitation = "status = 'invited' AND accepted_at IS NULL AND invitation_sent_at IS NOT NULL"
    op.create_index(
        "ix_users_invitation_open",
        "users",
        ["bureau_id", "invitation_sent_at"],
        unique=False,
        sqlite_where=sa.text(open_invitation),
        postgresql_where=sa.text(open_invitation),
    )
    op.create_index("ix_jobs_bureau_status_created", "jobs", ["bureau_id", "status", "created_at", "id"], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in counter_sql(dialect):
        op.execute(statement)
    for statement in recount_sql():
        op.execute(statement)


def downgrade():
    for statement in counter_sql(op.get_bind().dialect.name, drop=True):
        op.execute(statement)
    op.drop_index("ix_jobs_bureau_status_created", table_name="jobs")
    op.drop_index("ix_users_invitation_open", table_name="users")
    op.drop_index("ix_users_active_end_date", table_name="users")
    op.drop_index("ix_clients_consent_pending", table_name="clients")
    op.drop_table("bureau_counters")

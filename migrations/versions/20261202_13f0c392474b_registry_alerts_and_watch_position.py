"""registry alerts and watch position

Revision: 13f0c392474b, after 4b8e2f6a9c13, made 2026-12-02.

Issue 12's register watch: the alerts it raises per bureau (one per change: a unique key per client, kind and
change), with a partial index for the open ones that Hjem lists newest first, and the watch's position in the
register's change feed, one row for the installation.
"""

import sqlalchemy as sa
from alembic import op


revision = "13f0c392474b"
down_revision = "4b8e2f6a9c13"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "registry_watch_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("started_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_watch_state")),
    )
    op.create_table(
        "registry_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "bankrupt",
                "winding_up",
                "forced_dissolution",
                "reconstruction",
                "deleted",
                "removed",
                "name_changed",
                "address_changed",
                "organisation_form_changed",
                name="alert_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("change_key", sa.String(length=200), nullable=False),
        sa.Column("org_number", sa.String(length=9), nullable=True),
        sa.Column("client_name", sa.String(length=200), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("register_date", sa.Date(), nullable=True),
        sa.Column("update_id", sa.BigInteger(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_by_label", sa.String(length=300), nullable=True),
        sa.Column("digested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bureau_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["users.id"],
            name=op.f("fk_registry_alerts_acknowledged_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["bureau_id"], ["bureaus.id"], name=op.f("fk_registry_alerts_bureau_id_bureaus"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_registry_alerts_client_id_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_alerts")),
        sa.UniqueConstraint("client_id", "kind", "change_key", name="uq_registry_alerts_change"),
    )
    with op.batch_alter_table("registry_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_alerts_bureau_id"), ["bureau_id"], unique=False)
        batch_op.create_index("ix_registry_alerts_bureau_seen", ["bureau_id", "seen_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_registry_alerts_client_id"), ["client_id"], unique=False)
        batch_op.create_index(
            "ix_registry_alerts_open",
            ["bureau_id", "seen_at", "id"],
            unique=False,
            sqlite_where=sa.text("acknowledged_at IS NULL"),
            postgresql_where=sa.text("acknowledged_at IS NULL"),
        )


def downgrade():
    with op.batch_alter_table("registry_alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_registry_alerts_open",
            sqlite_where=sa.text("acknowledged_at IS NULL"),
            postgresql_where=sa.text("acknowledged_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_registry_alerts_client_id"))
        batch_op.drop_index("ix_registry_alerts_bureau_seen")
        batch_op.drop_index(batch_op.f("ix_registry_alerts_bureau_id"))

    op.drop_table("registry_alerts")
    op.drop_table("registry_watch_state")

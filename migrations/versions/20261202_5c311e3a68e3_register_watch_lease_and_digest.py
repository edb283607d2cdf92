"""register watch lease and digest

Revision: 5c311e3a68e3, after 13f0c392474b, made 2026-12-02.

The register watch reads the change feed for every bureau at once: one page of updates is matched against the
clients of all bureaus by org number (an index on clients.org_number alone; the unique (bureau_id, org_number) one
cannot serve a lookup across bureaus). One run at a time holds a lease on the watch's row (locked_until, fenced by
lock_token), and the daily alert digest remembers when it last went out. The alerts grid filters by kind and client,
and the digest reads the few alerts no e-mail has named yet (a partial index).
"""

import sqlalchemy as sa
from alembic import op


revision = "5c311e3a68e3"
down_revision = "13f0c392474b"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_clients_org_number",
            ["org_number"],
            unique=False,
            sqlite_where=sa.text("org_number IS NOT NULL"),
            postgresql_where=sa.text("org_number IS NOT NULL"),
        )

    with op.batch_alter_table("registry_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_registry_alerts_bureau_client_seen", ["bureau_id", "client_id", "seen_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_registry_alerts_bureau_kind_seen", ["bureau_id", "kind", "seen_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_registry_alerts_undigested",
            ["bureau_id", "id"],
            unique=False,
            sqlite_where=sa.text("digested_at IS NULL"),
            postgresql_where=sa.text("digested_at IS NULL"),
        )

    with op.batch_alter_table("registry_watch_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("lock_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("last_digest_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("registry_watch_state", schema=None) as batch_op:
        batch_op.drop_column("last_digest_at")
        batch_op.drop_column("lock_token")
        batch_op.drop_column("locked_until")

    with op.batch_alter_table("registry_alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_registry_alerts_undigested",
            sqlite_where=sa.text("digested_at IS NULL"),
            postgresql_where=sa.text("digested_at IS NULL"),
        )
        batch_op.drop_index("ix_registry_alerts_bureau_kind_seen")
        batch_op.drop_index("ix_registry_alerts_bureau_client_seen")

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_clients_org_number",
            sqlite_where=sa.text("org_number IS NOT NULL"),
            postgresql_where=sa.text("org_number IS NOT NULL"),
        )

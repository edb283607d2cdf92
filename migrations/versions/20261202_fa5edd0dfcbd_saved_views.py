"""saved views

Revision: fa5edd0dfcbd, after 6d2e9b4c1a70, made 2026-12-02.

Issue 12's saved views: a grid's checked query arguments under a name, private to a staff member or shared with the
bureau, with unique names per owner (private) or bureau (shared) and grid in partial indexes that also serve the
grid's menu, and each user's default view per grid (gone with the view or the user).
"""

import sqlalchemy as sa
from alembic import op


revision = "fa5edd0dfcbd"
down_revision = "6d2e9b4c1a70"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "saved_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grid", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("name_key", sa.String(length=320), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bureau_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["bureau_id"], ["bureaus.id"], name=op.f("fk_saved_views_bureau_id_bureaus"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_saved_views_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_views")),
    )
    with op.batch_alter_table("saved_views", schema=None) as batch_op:
        batch_op.create_index("ix_saved_views_owner", ["owner_id", "grid", "name_key"], unique=False)
        batch_op.create_index("ix_saved_views_bureau", ["bureau_id", "grid", "shared", "name_key"], unique=False)
        batch_op.create_index(
            "uq_saved_views_private_name",
            ["owner_id", "grid", "name_key"],
            unique=True,
            sqlite_where=sa.text("shared = 0"),
            postgresql_where=sa.text("NOT shared"),
        )
        batch_op.create_index(
            "uq_saved_views_shared_name",
            ["bureau_id", "grid", "name_key"],
            unique=True,
            sqlite_where=sa.text("shared"),
            postgresql_where=sa.text("shared"),
        )

    op.create_table(
        "saved_view_defaults",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("grid", sa.String(length=64), nullable=False),
        sa.Column("view_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_saved_view_defaults_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["view_id"], ["saved_views.id"], name=op.f("fk_saved_view_defaults_view_id_saved_views"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "grid", name=op.f("pk_saved_view_defaults")),
    )
    with op.batch_alter_table("saved_view_defaults", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_saved_view_defaults_view_id"), ["view_id"], unique=False)


def downgrade():
    op.drop_table("saved_view_defaults")
    op.drop_table("saved_views")

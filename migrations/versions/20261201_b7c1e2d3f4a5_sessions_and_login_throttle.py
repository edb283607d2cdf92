"""sessions and login throttle: per-user session token, global staff login e-mail, failed logins

Revision: b7c1e2d3f4a5, after 51db0c39fb73, made 2026-12-01.

Columns are added without rebuilding ``users`` (no batch mode), so SQLite keeps its foreign keys and rows as they
are. Existing staff get their login e-mail; when two staff users share an e-mail, the older user (lower id) keeps
it and the newer one has none, so it cannot log in until its e-mail is changed.
"""

import secrets

import sqlalchemy as sa
from alembic import op


revision = 'b7c1e2d3f4a5'
down_revision = '51db0c39fb73'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index('ix_login_failures_key_failed_at', 'login_failures', ['key', 'failed_at'], unique=False)
    op.create_index(op.f('ix_login_failures_failed_at'), 'login_failures', ['failed_at'], unique=False)

    op.add_column('users', sa.Column('session_token', sa.String(length=64), nullable=True))
    op.add_column('users', sa.Column('login_email', sa.String(length=254), nullable=True))

    conn = op.get_bind()
    for (user_id,) in conn.execute(sa.text("SELECT id FROM users")).all():
        conn.execute(
            sa.text("UPDATE users SET session_token = :token WHERE id = :id"),
            {"token": secrets.token_urlsafe(32), "id": user_id},
        )
    staff = conn.execute(
        sa.text(
            "SELECT users.id, persons.email FROM users"
            " JOIN persons ON persons.id = users.person_id"
            " JOIN clients ON clients.id = persons.client_id"
            " WHERE users.staff_role IS NOT NULL AND clients.is_internal AND persons.email IS NOT NULL"
            " ORDER BY users.id"
        )
    ).all()
    taken = set()
    for user_id, email in staff:
        login_email = email.strip().lower()
        if login_email and login_email not in taken:
            taken.add(login_email)
            conn.execute(
                sa.text("UPDATE users SET login_email = :email WHERE id = :id"), {"email": login_email, "id": user_id}
            )
    op.create_index(op.f('ix_users_login_email'), 'users', ['login_email'], unique=True)


def downgrade():
    op.drop_index(op.f('ix_users_login_email'), table_name='users')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('login_email')
        batch_op.drop_column('session_token')
    op.drop_index(op.f('ix_login_failures_failed_at'), table_name='login_failures')
    op.drop_index('ix_login_failures_key_failed_at', table_name='login_failures')
    op.drop_table('login_failures')

"""submission tokens: the used one-time tokens of the create forms

Revision: c3d9a1e7f205, after e52dda6e5325, made 2026-12-02.

A new table only; nothing existing changes. The unique nonce is what makes a second POST of a create form
(a double click, two tabs, a retried request) create nothing.
"""

import sqlalchemy as sa
from alembic import op


revision = 'c3d9a1e7f205'
down_revision = 'e52dda6e5325'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('submission_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('nonce', sa.String(length=32), nullable=False),
    sa.Column('form', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('result_url', sa.String(length=500), nullable=True),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('bureau_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['bureau_id'], ['bureaus.id'], name=op.f('fk_submission_tokens_bureau_id_bureaus'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_submission_tokens_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submission_tokens')),
    sa.UniqueConstraint('nonce', name=op.f('uq_submission_tokens_nonce'))
    )
    op.create_index(op.f('ix_submission_tokens_bureau_id'), 'submission_tokens', ['bureau_id'], unique=False)
    op.create_index(op.f('ix_submission_tokens_used_at'), 'submission_tokens', ['used_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_submission_tokens_used_at'), table_name='submission_tokens')
    op.drop_index(op.f('ix_submission_tokens_bureau_id'), table_name='submission_tokens')
    op.drop_table('submission_tokens')

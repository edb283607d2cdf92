"""background jobs: a job per import, bulk register refresh or month close, and one row per unit of its input

Revision: 8faeb6e5ba18, after c3d9a1e7f205, made 2026-12-01.
"""

import sqlalchemy as sa
from alembic import op


revision = '8faeb6e5ba18'
down_revision = 'c3d9a1e7f205'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('client_import', 'person_import', 'client_refresh', 'billing_close', name='job_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_by_label', sa.String(length=300), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'done', 'failed', name='job_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('columns', sa.JSON(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('stage', sa.Integer(), nullable=False),
    sa.Column('stage_done', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=64), nullable=True),
    sa.Column('claims', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('bureau_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('total >= 0 AND done >= 0 AND errors >= 0 AND stage_done >= 0 AND done <= total', name=op.f('ck_jobs_counts_in_range')),
    sa.ForeignKeyConstraint(['bureau_id'], ['bureaus.id'], name=op.f('fk_jobs_bureau_id_bureaus'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_jobs_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_bureau_created', ['bureau_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_bureau_id'), ['bureau_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index('ix_jobs_status_locked_until', ['status', 'locked_until'], unique=False)

    op.create_table('job_rows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('input', sa.JSON(), nullable=False),
    sa.Column('stage', sa.Integer(), nullable=False),
    sa.Column('finished', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=True),
    sa.Column('refused', sa.Boolean(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('target_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_rows_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_rows')),
    sa.UniqueConstraint('job_id', 'position', name=op.f('uq_job_rows_job_id_position'))
    )
    with op.batch_alter_table('job_rows', schema=None) as batch_op:
        batch_op.create_index('ix_job_rows_job_pending', ['job_id', 'finished', 'position'], unique=False)



def downgrade():
    with op.batch_alter_table('job_rows', schema=None) as batch_op:
        batch_op.drop_index('ix_job_rows_job_pending')

    op.drop_table('job_rows')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_status_locked_until')
        batch_op.drop_index(batch_op.f('ix_jobs_created_by_id'))
        batch_op.drop_index(batch_op.f('ix_jobs_bureau_id'))
        batch_op.drop_index('ix_jobs_bureau_created')

    op.drop_table('jobs')

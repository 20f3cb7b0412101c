"""consent at use time: what a use states, violations with reasons, pause, deletion owed"""

from alembic import op
import sqlalchemy as sa



revision = '0003'
down_revision = '0002'


def upgrade() -> None:
    with op.batch_alter_table('artists', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('paused_by_kind', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('paused_by_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pause_reason', sa.Text(), nullable=True))
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('media', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('territory', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('likeness', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('violation_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('reasons', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.create_unique_constraint('uq_usage_events_violation_id', ['violation_id'])
    op.create_table('deletions',
    sa.Column('grant_id', sa.String(length=32), nullable=False),
    sa.Column('creator_id', sa.String(length=32), nullable=False),
    sa.Column('cause', sa.String(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reminders_sent', sa.Integer(), nullable=False),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('statement', sa.Text(), nullable=True),
    sa.Column('receipt', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], ),
    sa.PrimaryKeyConstraint('grant_id')
    )
    with op.batch_alter_table('deletions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deletions_creator_id'), ['creator_id'], unique=False)
        batch_op.create_index('ix_deletions_open_due', ['confirmed_at', 'due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deletions', schema=None) as batch_op:
        batch_op.drop_index('ix_deletions_open_due')
        batch_op.drop_index(batch_op.f('ix_deletions_creator_id'))
    op.drop_table('deletions')
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_constraint('uq_usage_events_violation_id', type_='unique')
        batch_op.drop_column('reasons')
        batch_op.drop_column('violation_id')
        batch_op.drop_column('likeness')
        batch_op.drop_column('territory')
        batch_op.drop_column('media')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_column('paused_at')
    with op.batch_alter_table('artists', schema=None) as batch_op:
        batch_op.drop_column('pause_reason')
        batch_op.drop_column('paused_by_id')
        batch_op.drop_column('paused_by_kind')
        batch_op.drop_column('paused_at')

"""outputs: files made under a grant, released or rejected by the artist"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'


def upgrade() -> None:
    with op.batch_alter_table('artists', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('require_preview', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('output_sha256', sa.String(length=64), nullable=True))
    op.create_table(
        'outputs',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('grant_id', sa.String(length=32), nullable=False),
        sa.Column('request_id', sa.String(length=32), nullable=False),
        sa.Column('creator_id', sa.String(length=32), nullable=False),
        sa.Column('artist_id', sa.String(length=32), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('media_type', sa.String(length=32), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('release_due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reminders_sent', sa.Integer(), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by_kind', sa.String(length=16), nullable=True),
        sa.Column('decided_by_id', sa.String(length=64), nullable=True),
        sa.Column('receipt', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['grant_id'], ['grants.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('grant_id', 'sha256', name='uq_outputs_grant_sha256'),
    )
    op.create_index('ix_outputs_grant_id', 'outputs', ['grant_id'], unique=False)
    op.create_index('ix_outputs_creator_id', 'outputs', ['creator_id'], unique=False)
    op.create_index('ix_outputs_sha256', 'outputs', ['sha256'], unique=False)
    op.create_index('ix_outputs_status_due', 'outputs', ['status', 'release_due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outputs_status_due', table_name='outputs')
    op.drop_index('ix_outputs_sha256', table_name='outputs')
    op.drop_index('ix_outputs_creator_id', table_name='outputs')
    op.drop_index('ix_outputs_grant_id', table_name='outputs')
    op.drop_table('outputs')
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_column('output_sha256')
    with op.batch_alter_table('artists', schema=None) as batch_op:
        batch_op.drop_column('require_preview')

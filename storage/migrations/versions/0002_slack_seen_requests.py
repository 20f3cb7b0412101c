"""slack seen requests: signatures of handled Slack requests, to refuse replays"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'


def upgrade() -> None:
    op.create_table('slack_seen_requests',
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('signature')
    )
    with op.batch_alter_table('slack_seen_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_seen_requests_signed_at'), ['signed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('slack_seen_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slack_seen_requests_signed_at'))

    op.drop_table('slack_seen_requests')

"""send budgets: the platforms' send limits kept across every instance (one row per lane)"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'


def upgrade() -> None:
    op.create_table('send_budgets',
    sa.Column('lane', sa.String(length=200), nullable=False),
    sa.Column('free_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('lane')
    )


def downgrade() -> None:
    op.drop_table('send_budgets')

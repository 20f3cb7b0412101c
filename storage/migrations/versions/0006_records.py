"""records: artists and creators can be deactivated"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'


def upgrade() -> None:
    with op.batch_alter_table('artists', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('creators', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('creators', schema=None) as batch_op:
        batch_op.drop_column('deactivated_at')
    with op.batch_alter_table('artists', schema=None) as batch_op:
        batch_op.drop_column('deactivated_at')

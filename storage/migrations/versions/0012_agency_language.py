"""agency language: the board and /likeness speak each agency's language"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'


def upgrade() -> None:
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), server_default='en', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.drop_column('language')

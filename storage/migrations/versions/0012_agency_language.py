"""agency language: the board and /likeness speak each agency's language

Revision ID: 0012
Revises: 0007
Create Date: 2026-11-27 23:40:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), server_default='en', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.drop_column('language')

"""person keys: one key per person sealing their values in the audit chain; erasure deletes it"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'


def upgrade() -> None:
    op.create_table('person_keys',
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('subject_id')
    )


def downgrade() -> None:
    op.drop_table('person_keys')

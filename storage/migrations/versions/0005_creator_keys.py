"""creator keys: several named, revocable API keys per creator; webhook secret overlap"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'


def upgrade() -> None:
    op.create_table('creator_keys',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('creator_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['creator_id'], ['creators.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    with op.batch_alter_table('creator_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_creator_keys_creator_id'), ['creator_id'], unique=False)
    with op.batch_alter_table('creators', schema=None) as batch_op:
        batch_op.add_column(sa.Column('api_key_last_used_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('webhook_secret_previous', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('webhook_secret_previous_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('creators', schema=None) as batch_op:
        batch_op.drop_column('webhook_secret_previous_until')
        batch_op.drop_column('webhook_secret_previous')
        batch_op.drop_column('api_key_last_used_at')
    with op.batch_alter_table('creator_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_creator_keys_creator_id'))
    op.drop_table('creator_keys')

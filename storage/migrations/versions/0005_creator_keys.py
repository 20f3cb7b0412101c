"""creator keys: several named, revocable API keys per creator; webhook secret overlap"""

from storage.migrations.columns import Alter, Table, migration

revision = '0005'
down_revision = '0004'


upgrade, downgrade = migration(
    Table('creator_keys', dict(
        id='str32', creator_id='str32', name='str100', key_hash='str64', created_at='time',
        last_used_at='time?', revoked_at='time?'),
        foreign_keys={'creator_id': 'creators.id'}, unique=('key_hash',),
        indexes={'ix_creator_keys_creator_id': ('creator_id',)}),
    Alter('creators', dict(
        api_key_last_used_at='time?', webhook_secret_previous='str128?', webhook_secret_previous_until='time?')),
)

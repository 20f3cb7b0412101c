"""inbox: Telegram updates and Slack clicks stored before they are acknowledged"""

from storage.migrations.columns import Table, migration

revision = '0008'
down_revision = '0007'


upgrade, downgrade = migration(
    Table('inbox', dict(
        key='str160', source='str16', kind='str32', payload='json', received_at='time', claimed_until='time',
        done_at='time?'),
        primary_key=('key',), indexes={'ix_inbox_done_at': ('done_at',)}),
)

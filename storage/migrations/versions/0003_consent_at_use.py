"""consent at use time: what a use states, violations with reasons, pause, deletion owed"""

from storage.migrations.columns import Alter, Table, migration

revision = '0003'
down_revision = '0002'


upgrade, downgrade = migration(
    Alter('artists', dict(paused_at='time?', paused_by_kind='str16?', paused_by_id='str64?', pause_reason='text?')),
    Alter('grants', dict(paused_at='time?')),
    Alter('usage_events', dict(
        media='str16?', territory='json?', likeness='json?', violation_id='str32?', reasons='json'),
        options={'reasons': {'server_default': '[]'}},
        named_unique={'uq_usage_events_violation_id': ('violation_id',)}),
    Table('deletions', dict(
        grant_id='str32', creator_id='str32', cause='str16', due_at='time', reminders_sent='int',
        escalated_at='time?', confirmed_at='time?', deleted_at='time?', statement='text?', receipt='json?'),
        primary_key=('grant_id',),
        foreign_keys={'grant_id': 'grants.id'},
        indexes={'ix_deletions_creator_id': ('creator_id',), 'ix_deletions_open_due': ('confirmed_at', 'due_at')}),
)

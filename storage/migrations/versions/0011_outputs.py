"""outputs: files made under a grant, released or rejected by the artist"""

import sqlalchemy as sa

from storage.migrations.columns import Alter, Table, migration

revision = '0011'
down_revision = '0010'


upgrade, downgrade = migration(
    Alter('artists', dict(require_preview='bool'), options={'require_preview': {'server_default': sa.false()}}),
    Alter('usage_events', dict(output_sha256='str64?')),
    Table('outputs', dict(
        id='str32', grant_id='str32', request_id='str32', creator_id='str32', artist_id='str32',
        sha256='str64', media_type='str32', size='bigint', description='text', status='str16', reason='text?',
        release_due_at='time', reminders_sent='int', decided_at='time?', decided_by_kind='str16?',
        decided_by_id='str64?', receipt='json?', created_at='time', updated_at='time'),
        foreign_keys={'grant_id': 'grants.id'},
        named_unique={'uq_outputs_grant_sha256': ('grant_id', 'sha256')},
        indexes={
            'ix_outputs_grant_id': ('grant_id',),
            'ix_outputs_creator_id': ('creator_id',),
            'ix_outputs_sha256': ('sha256',),
            'ix_outputs_status_due': ('status', 'release_due_at'),
        }),
)

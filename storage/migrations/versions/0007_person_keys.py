"""person keys: one key per person sealing their values in the audit chain; erasure deletes it"""

from storage.migrations.columns import Table, migration

revision = '0007'
down_revision = '0006'


upgrade, downgrade = migration(
    Table('person_keys', dict(subject_id='str64', key='str64', created_at='time'), primary_key=('subject_id',)),
)

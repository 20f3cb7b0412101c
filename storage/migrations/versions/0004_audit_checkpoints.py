"""audit checkpoints: signed heads of the audit chain, for witnesses outside the database"""

from storage.migrations.columns import Table, migration

revision = '0004'
down_revision = '0003'


upgrade, downgrade = migration(
    Table('audit_checkpoints', dict(
        seq='seq', head_hash='str64', created_at='time', kid='str64', document='json', slot='str64?'),
        primary_key=('seq',), unique=('slot',), options={'seq': {'autoincrement': False}}),
)

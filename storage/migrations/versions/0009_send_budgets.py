"""send budgets: the platforms' send limits kept across every instance (one row per lane)"""

from storage.migrations.columns import Table, migration

revision = '0009'
down_revision = '0008'


upgrade, downgrade = migration(
    Table('send_budgets', dict(lane='str200', free_at='double'), primary_key=('lane',)),
)

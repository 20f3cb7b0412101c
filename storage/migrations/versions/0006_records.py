"""records: artists and creators can be deactivated"""

from storage.migrations.columns import Alter, migration

revision = '0006'
down_revision = '0005'


upgrade, downgrade = migration(
    Alter('artists', dict(deactivated_at='time?')),
    Alter('creators', dict(deactivated_at='time?')),
)

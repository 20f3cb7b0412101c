"""agency language: the board and /likeness speak each agency's language"""

from storage.migrations.columns import Alter, migration

revision = '0012'
down_revision = '0011'


upgrade, downgrade = migration(
    Alter('agencies', dict(language='str16'), options={'language': {'server_default': 'en'}}),
)

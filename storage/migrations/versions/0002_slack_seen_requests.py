"""slack seen requests: signatures of handled Slack requests, to refuse replays"""

from storage.migrations.columns import Table, migration

revision = '0002'
down_revision = '0001'


upgrade, downgrade = migration(
    Table('slack_seen_requests', dict(signature='str128', signed_at='time'), primary_key=('signature',),
          indexes={'ix_slack_seen_requests_signed_at': ('signed_at',)}),
)

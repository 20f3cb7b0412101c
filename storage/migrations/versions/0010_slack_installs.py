"""slack installs: one Slack app in many workspaces (slack_sdk's installation and state tables,
the agencies' install links, and each agency's workspace)
"""

from storage.migrations.columns import Alter, Table, migration

revision = '0010'
down_revision = '0009'

# Fernet-sealed tokens (bot/secrets_box.py) are longer than slack_sdk's String(200).
SEALED = 'text?'

SERIAL = {'id': {'autoincrement': True}}

# The columns slack_sdk's installations and bots tables both begin with: the row, the app and the enterprise.
APP = dict(id='int', client_id='str32', app_id='str32', enterprise_id='str32?', enterprise_name='str200?')

# The workspace and its bot, as slack_sdk's installations and bots tables both keep them.
BOT = dict(
    team_id='str32?', team_name='str200?', bot_token=SEALED, bot_id='str32?', bot_user_id='str32?',
    bot_scopes='str1000?', bot_refresh_token=SEALED, bot_token_expires_at='naive_time?')


upgrade, downgrade = migration(
    Alter('agencies', dict(slack_team_id='str32?', slack_connected_at='time?', slack_disconnected_at='time?'),
          indexes={'ix_agencies_slack_team_id': ('slack_team_id',)}),
    Table('slack_install_links', dict(
        id='str40', agency_id='str32', created_at='time', expires_at='time', state='str200?', used_at='time?',
        team_id='str32?'),
        foreign_keys={'agency_id': 'agencies.id'}, unique=('state',),
        indexes={'ix_slack_install_links_agency_id': ('agency_id',)}),
    Table('slack_installations', dict(
        **APP, enterprise_url='str200?', **BOT, user_id='str32', user_token=SEALED, user_scopes='str1000?',
        user_refresh_token=SEALED, user_token_expires_at='naive_time?', incoming_webhook_url=SEALED,
        incoming_webhook_channel='str200?', incoming_webhook_channel_id='str200?',
        incoming_webhook_configuration_url='str200?', is_enterprise_install='bool', token_type='str32?',
        installed_at='naive_time'),
        options=SERIAL,
        indexes={'slack_installations_idx': ('client_id', 'enterprise_id', 'team_id', 'user_id', 'installed_at')}),
    Table('slack_bots', dict(**APP, **BOT, is_enterprise_install='bool', installed_at='naive_time'),
          options=SERIAL, indexes={'slack_bots_idx': ('client_id', 'enterprise_id', 'team_id', 'installed_at')}),
    Table('slack_oauth_states', dict(id='int', state='str200', expire_at='naive_time'), options=SERIAL),
)

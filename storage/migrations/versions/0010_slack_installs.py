"""slack installs: one Slack app in many workspaces (slack_sdk's installation and state tables,
the agencies' install links, and each agency's workspace)
"""

from typing import Any

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'


def _sealed() -> sa.Text:
    # Fernet-sealed tokens (bot/secrets_box.py) are longer than slack_sdk's String(200).
    return sa.Text()


def _app_columns() -> list[sa.Column[Any]]:
    # The columns slack_sdk's installations and bots tables both begin with: the row, the app and
    # the enterprise.
    return [
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('client_id', sa.String(length=32), nullable=False),
        sa.Column('app_id', sa.String(length=32), nullable=False),
        sa.Column('enterprise_id', sa.String(length=32), nullable=True),
        sa.Column('enterprise_name', sa.String(length=200), nullable=True),
    ]


def _bot_columns() -> list[sa.Column[Any]]:
    # The workspace and its bot, as slack_sdk's installations and bots tables both keep them.
    return [
        sa.Column('team_id', sa.String(length=32), nullable=True),
        sa.Column('team_name', sa.String(length=200), nullable=True),
        sa.Column('bot_token', _sealed(), nullable=True),
        sa.Column('bot_id', sa.String(length=32), nullable=True),
        sa.Column('bot_user_id', sa.String(length=32), nullable=True),
        sa.Column('bot_scopes', sa.String(length=1000), nullable=True),
        sa.Column('bot_refresh_token', _sealed(), nullable=True),
        sa.Column('bot_token_expires_at', sa.DateTime(), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slack_team_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('slack_connected_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('slack_disconnected_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_agencies_slack_team_id'), ['slack_team_id'], unique=False)

    op.create_table('slack_install_links',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('agency_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=200), nullable=True),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('state')
    )
    with op.batch_alter_table('slack_install_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_install_links_agency_id'), ['agency_id'], unique=False)

    op.create_table('slack_installations',
    *_app_columns(),
    sa.Column('enterprise_url', sa.String(length=200), nullable=True),
    *_bot_columns(),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('user_token', _sealed(), nullable=True),
    sa.Column('user_scopes', sa.String(length=1000), nullable=True),
    sa.Column('user_refresh_token', _sealed(), nullable=True),
    sa.Column('user_token_expires_at', sa.DateTime(), nullable=True),
    sa.Column('incoming_webhook_url', _sealed(), nullable=True),
    sa.Column('incoming_webhook_channel', sa.String(length=200), nullable=True),
    sa.Column('incoming_webhook_channel_id', sa.String(length=200), nullable=True),
    sa.Column('incoming_webhook_configuration_url', sa.String(length=200), nullable=True),
    sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
    sa.Column('token_type', sa.String(length=32), nullable=True),
    sa.Column('installed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('slack_installations_idx', 'slack_installations',
                    ['client_id', 'enterprise_id', 'team_id', 'user_id', 'installed_at'], unique=False)

    op.create_table('slack_bots',
    *_app_columns(),
    *_bot_columns(),
    sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
    sa.Column('installed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('slack_bots_idx', 'slack_bots',
                    ['client_id', 'enterprise_id', 'team_id', 'installed_at'], unique=False)

    op.create_table('slack_oauth_states',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('state', sa.String(length=200), nullable=False),
    sa.Column('expire_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('slack_oauth_states')
    op.drop_index('slack_bots_idx', table_name='slack_bots')
    op.drop_table('slack_bots')
    op.drop_index('slack_installations_idx', table_name='slack_installations')
    op.drop_table('slack_installations')
    with op.batch_alter_table('slack_install_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slack_install_links_agency_id'))
    op.drop_table('slack_install_links')
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agencies_slack_team_id'))
        batch_op.drop_column('slack_disconnected_at')
        batch_op.drop_column('slack_connected_at')
        batch_op.drop_column('slack_team_id')

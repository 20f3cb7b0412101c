"""The tables of one Slack app in many workspaces: an agency's install links, and slack_sdk's
installation and OAuth state tables, declared here so that the migrations build them (0010)."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base


class SlackInstallLink(Base):
    """An agency's "Add to Slack" link: signed, used once, valid until `expires_at`.

    `state` is the OAuth state of the latest click, so the redirect back finds its agency.
    """

    __tablename__ = "slack_install_links"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    state: Mapped[str | None] = mapped_column(String(200), unique=True)
    used_at: Mapped[datetime | None]
    team_id: Mapped[str | None] = mapped_column(String(32))


# slack_sdk's installation and OAuth state tables, declared here so that the migrations build them
# (0010). The token columns are Text: they hold Fernet-sealed tokens (bot/secrets_box.py).
SEALED_COLUMNS = (
    "bot_token",
    "bot_refresh_token",
    "user_token",
    "user_refresh_token",
    "incoming_webhook_url",
)
slack_installations = AsyncSQLAlchemyInstallationStore.build_installations_table(
    Base.metadata, "slack_installations"
)
slack_bots = AsyncSQLAlchemyInstallationStore.build_bots_table(Base.metadata, "slack_bots")
slack_oauth_states = AsyncSQLAlchemyOAuthStateStore.build_oauth_states_table(
    Base.metadata, "slack_oauth_states"
)
for _table in (slack_installations, slack_bots):
    for _name in SEALED_COLUMNS:
        if _name in _table.c:
            _table.c[_name].type = Text()

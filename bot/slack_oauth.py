"""One Slack app, many workspaces: the installations on our database, their tokens sealed.

`SlackInstalls` holds what OAuth mode (SLACK_CLIENT_ID set) needs: slack_sdk's SQLAlchemy
installation store, subclassed so that every token it writes is sealed with SECRETS_KEY and
every token it reads is opened; slack_sdk's state store; the settings of Bolt's OAuth flow;
Bolt's `authorize` (which workspace's token answers a request, by its team id); and the token
provider the Slack sender asks for the token of an agency's board. The tables are declared in
storage/tables.py and built by the migrations, never by the stores.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.delivery import Undeliverable
from bot.secrets_box import SEALED_PREFIX, SealBroken, SecretsBox
from bot.workflow import Desk
from storage.tables import SEALED_COLUMNS, Agency

log = logging.getLogger(__name__)

# What the app asks for when installed: post (also in public channels it was not invited to),
# /likeness, the report uploads, and the channel the installer picks for the board.
SCOPES = ("chat:write", "chat:write.public", "commands", "files:write", "incoming-webhook")
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_SECONDS = 10 * 60  # from the click on the link to Slack's redirect back
Authorize = Callable[[str | None, str | None, str | None], Awaitable[AuthorizeResult | None]]


class SealedInstallationStore(AsyncSQLAlchemyInstallationStore):
    """slack_sdk's installation store with the tokens (and the webhook URL) sealed at rest."""

    def __init__(self, client_id: str, engine: Any, box: SecretsBox) -> None:
        """Parameters:
        client_id: the app's client id (rows are kept per app).
        engine: our database's async engine.
        box: seals and opens the tokens.
        """
        super().__init__(client_id=client_id, engine=engine, logger=log)
        self._box = box

    def _sealed(self, record: Any) -> Any:
        record = copy.copy(record)
        for name in SEALED_COLUMNS:
            value = getattr(record, name, None)
            if isinstance(value, str) and value:
                setattr(record, name, self._box.seal(value))
        return record

    def _opened(self, record: Any) -> Any:
        if record is None:
            return None
        for name in SEALED_COLUMNS:
            value = getattr(record, name, None)
            if isinstance(value, str) and value.startswith(SEALED_PREFIX):
                try:
                    setattr(record, name, self._box.open(value))
                except SealBroken:
                    log.error("a stored Slack %s cannot be opened with SECRETS_KEY", name)
                    setattr(record, name, None)
        return record

    async def async_save(self, installation: Installation) -> None:
        """Saves the installation (and its bot) with every token sealed."""
        await super().async_save(self._sealed(installation))

    async def async_save_bot(self, bot: Bot) -> None:
        """Saves the bot with its token sealed."""
        await super().async_save_bot(self._sealed(bot))

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        """The workspace's latest bot, its token opened."""
        found = await super().async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        return self._opened(found)  # type: ignore[no-any-return]

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The workspace's latest installation, its tokens opened."""
        found = await super().async_find_installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )
        return self._opened(found)  # type: ignore[no-any-return]


@dataclass
class SlackInstalls:
    """Everything OAuth mode needs, built once at start from the settings and the desk."""

    desk: Desk
    settings: Settings
    box: SecretsBox
    store: SealedInstallationStore
    states: AsyncSQLAlchemyOAuthStateStore

    @classmethod
    def of(cls, settings: Settings, desk: Desk) -> SlackInstalls:
        """Builds the stores on the desk's database (start-up has checked the settings)."""
        assert settings.slack_client_id is not None and settings.secrets_key is not None
        box = SecretsBox(settings.secrets_key.get_secret_value())
        store = SealedInstallationStore(settings.slack_client_id, desk.db.engine, box)
        states = AsyncSQLAlchemyOAuthStateStore(
            expiration_seconds=STATE_SECONDS, engine=desk.db.engine, logger=log
        )
        return cls(desk, settings, box, store, states)

    @property
    def redirect_uri(self) -> str | None:
        """Where Slack sends the installer back: PUBLIC_URL + /slack/oauth_redirect (else the
        first Redirect URL of the app's settings)."""
        return f"{self.settings.public_url}{REDIRECT_PATH}" if self.settings.public_url else None

    def flow(self, callbacks: AsyncCallbackOptions) -> AsyncOAuthFlow:
        """Bolt's OAuth flow on our stores, answering with the given pages."""
        secret = self.settings.slack_client_secret
        assert secret is not None
        base = self.settings.slack_api_base_url
        return AsyncOAuthFlow(
            client=AsyncWebClient(base_url=base if base.endswith("/") else base + "/"),
            logger=log,
            settings=AsyncOAuthSettings(
                client_id=self.settings.slack_client_id,
                client_secret=secret.get_secret_value(),
                scopes=list(SCOPES),
                redirect_uri=self.redirect_uri,
                redirect_uri_path=REDIRECT_PATH,
                authorization_url=self.settings.slack_oauth_authorize_url,
                installation_store=self.store,
                installation_store_bot_only=True,
                state_store=self.states,
                state_expiration_seconds=STATE_SECONDS,
                install_page_rendering_enabled=False,
                callback_options=callbacks,
                logger=log,
            ),
        )

    @property
    def authorize(self) -> Authorize:
        """Bolt's authorize, as a plain function: Bolt hands over the arguments by their names."""

        async def authorize(
            enterprise_id: str | None, team_id: str | None, user_id: str | None
        ) -> AuthorizeResult | None:
            return await self.workspace_bot(enterprise_id, team_id, user_id)

        return authorize

    async def workspace_bot(
        self, enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult | None:
        """The bot of the request's workspace from the installation store; the SLACK_BOT_TOKEN
        workspace's token for a team never installed; None (Bolt refuses the request) otherwise."""
        bot = await self.store.async_find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is not None and bot.bot_token:
            return AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=team_id,
                bot_token=bot.bot_token,
                bot_id=bot.bot_id,
                bot_user_id=bot.bot_user_id,
                user_id=user_id,
            )
        legacy = self.settings.slack_bot_token
        if legacy is not None:
            return AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=team_id,
                bot_token=legacy.get_secret_value(),
                user_id=user_id,
            )
        return None

    async def forget_team(self, team_id: str) -> None:
        """Deletes the workspace's installation and bot rows: its tokens are gone from the database."""
        await self.store.async_delete_bot(enterprise_id=None, team_id=team_id)
        await self.store.async_delete_installation(enterprise_id=None, team_id=team_id)

    async def bot_token(self, agency_id: str) -> str | None:
        """The token the agency's board posts with: its workspace's bot token when it installed the
        app, None for an agency on the SLACK_BOT_TOKEN workspace; a disconnected agency's notices
        are given up."""
        async with self.desk.db.read() as session:
            agency = await session.get(Agency, agency_id)
        if agency is None or agency.slack_team_id is None:
            return None
        if agency.slack_disconnected_at is not None:
            raise Undeliverable(f"agency {agency_id} disconnected its Slack workspace")
        bot = await self.store.async_find_bot(enterprise_id=None, team_id=agency.slack_team_id)
        if bot is None or not bot.bot_token:
            raise Undeliverable(f"agency {agency_id}'s Slack workspace has no installation")
        return str(bot.bot_token)

"""The app's installation, as Slack plays it: the authorize page (the installer approves, picking
the workspace and a channel for the app's incoming webhook), ``oauth.v2.access`` (the code for a
bot token of that workspace), and the uninstall and token revocation events sent to the app."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass

from aiohttp import web

from sandbox.slack.interactions import AppRequests, AppResponse
from sandbox.slack.rules import JSON
from sandbox.slack.state import Grant


@dataclass
class Installer:
    """Who approves the next install on the authorize page, and what they pick."""

    team_id: str
    user_id: str
    channel_id: str | None
    deny: bool = False


class SlackOAuth(AppRequests):
    """Installs of the app in the simulated workspaces."""

    _installer: Installer | None = None
    redirect_url: str | None = None  # the app's configured Redirect URL, used when none is sent

    def sign_in(
        self, team_id: str, user_id: str, channel_id: str | None = None, *, deny: bool = False
    ) -> None:
        """The browser's user: the next authorize page approves (or denies) as them in this workspace."""
        self.team(team_id)  # KeyError for an unknown workspace
        self._installer = Installer(team_id, user_id, channel_id, deny)

    async def _handle_authorize(self, request: web.Request) -> web.StreamResponse:
        """``GET /oauth/v2/authorize``: approves as the signed-in user and redirects with a code."""
        query = request.query
        redirect = query.get("redirect_uri") or self.redirect_url
        if query.get("client_id") != self.client_id or not redirect:
            return web.Response(status=400, text="invalid_client_id or no redirect_uri")
        state = query.get("state", "")
        installer = self._installer
        if installer is None:
            return web.Response(status=401, text="not signed in to any workspace")
        if installer.deny:
            params = {"error": "access_denied", "state": state}
        else:
            code = f"{int(time.time())}.{secrets.token_hex(12)}"
            self._codes[code] = Grant(
                installer.team_id,
                installer.user_id,
                installer.channel_id,
                query.get("scope", ""),
                query.get("redirect_uri"),
            )
            params = {"code": code, "state": state}
        self._record("oauth.authorize", {"state": state, "redirect_uri": redirect}, 302, params)
        raise web.HTTPFound(f"{redirect}?{urllib.parse.urlencode(params)}")

    def _oauth_access(self, request: web.Request, params: JSON) -> JSON:
        """``oauth.v2.access``: the client's credentials (HTTP Basic or form) and a fresh code."""
        client_id, client_secret = _basic(request.headers.get("Authorization", ""))
        client_id = client_id or str(params.pop("client_id", "") or "")
        client_secret = client_secret or str(params.pop("client_secret", "") or "")
        grant = self._codes.get(str(params.get("code") or ""))
        if client_id != self.client_id:
            return {"ok": False, "error": "invalid_client_id"}
        if not hmac.compare_digest(client_secret, self.client_secret):
            return {"ok": False, "error": "bad_client_secret"}
        if grant is None or grant.used:
            return {"ok": False, "error": "invalid_code"}
        if grant.redirect_uri and params.get("redirect_uri") != grant.redirect_uri:
            return {"ok": False, "error": "bad_redirect_uri"}
        grant.used = True
        team = self.team(grant.team_id)
        token = f"xoxb-{team.id}-{secrets.token_hex(16)}"
        team.tokens = {token}  # a new install replaces the workspace's bot token
        answer: JSON = {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": grant.scope,
            "bot_user_id": team.bot_user_id,
            "app_id": self.api_app_id,
            "team": {"id": team.id, "name": team.name},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": grant.user_id},
        }
        if grant.channel_id:
            answer["incoming_webhook"] = {
                "channel": "#" + self._channels.get(grant.channel_id, grant.channel_id),
                "channel_id": grant.channel_id,
                "configuration_url": f"https://{team.domain}.slack.com/services/B0HOOK",
                "url": f"{self.url}/hooks/{team.id}/{secrets.token_hex(12)}",
            }
        return answer

    def installed(self, team_id: str) -> bool:
        """Whether the app has a live bot token in this workspace."""
        return bool(self.team(team_id).tokens)

    async def uninstall(self, team_id: str) -> AppResponse:
        """Someone removes the app from the workspace: its tokens stop working, the app is told."""
        self.team(team_id).tokens.clear()
        return await self._event(team_id, {"type": "app_uninstalled"})

    async def revoke_tokens(self, team_id: str) -> AppResponse:
        """The workspace revokes the bot's token: it stops working, the app is told."""
        team = self.team(team_id)
        team.tokens.clear()
        return await self._event(team_id, {"type": "tokens_revoked", "tokens": {"bot": [team.bot_user_id]}})

    async def _event(self, team_id: str, event: JSON) -> AppResponse:
        body: JSON = {
            "token": self.verification_token,
            "team_id": team_id,
            "api_app_id": self.api_app_id,
            "event": event | {"event_ts": f"{time.time():.6f}"},
            "type": "event_callback",
            "event_id": f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
        }
        self._changes.notify()
        return await self._send_to_app("event", json.dumps(body), None, content_type="application/json")


def _basic(header: str) -> tuple[str, str]:
    if not header.lower().startswith("basic "):
        return "", ""
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    client_id, _, secret = decoded.partition(":")
    return client_id, secret

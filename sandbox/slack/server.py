"""A Slack workspace in a box: the Web API over HTTP, plus Slack's requests to the app."""

from __future__ import annotations

from aiohttp import web

from sandbox.sim.control import add_routes, marked_routes
from sandbox.sim.server import client_session
from sandbox.slack.control import ControlRoutes


class SlackSimulator(ControlRoutes):
    """A Slack workspace in a box: the Web API over HTTP, plus Slack's requests to the app.

    Parameters:
        bot_token: the only token the Web API accepts.
        signing_secret: used to sign every request sent to ``app_url``.
        team_id, team_domain, bot_user_id, bot_id, api_app_id: identities shown in answers and payloads.
        app_url: where clicks, submissions and slash commands go (settable later).
        verification_token: the deprecated ``token`` field put in payloads.
        rate_limits_enabled: answer 429 when a limit is exceeded (stats are kept either way).
        post_message_rate, post_message_burst: chat.postMessage limit per channel (GCRA).
        tier_limits_enabled: also apply ``TIER_LIMITS`` to the methods in ``METHOD_TIERS``.
        latency: seconds added to every Web API answer (for benchmarks).
        trigger_ttl: seconds a trigger_id stays usable, 3 like Slack.
        app_timeout: seconds Slack waits for the app's answer before giving up, 3 like Slack.
        clock: monotonic seconds for rate limits and trigger expiry; tests pass a fake one.
        max_calls: how many recent calls ``calls()`` keeps.
    """

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving on host:port (port 0 picks a free one; read it back from ``url``)."""
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{key}", self._handle_upload)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_get("/files/{file_id}/{name}", self._handle_file_download)
        app.router.add_get("/oauth/v2/authorize", self._handle_authorize)
        add_routes(app, marked_routes(self))
        await self._server.start(app, host, port)
        self._session = client_session()

    async def stop(self) -> None:
        """Stop serving and close the client used to reach the app."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._server.stop()

    async def __aenter__(self) -> SlackSimulator:
        """Start on a free local port unless already started."""
        if not self._server.running:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop serving."""
        await self.stop()

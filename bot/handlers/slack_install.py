"""One Slack app in many workspaces, the handlers' side: an agency's install link, Slack's
redirect back, the uninstall events, and which workspace a request comes from.

`GET /slack/install/{link}` checks the link (signed, unused, unexpired; otherwise a page says
why and nothing is written), issues Bolt's OAuth state, remembers it on the link and sends the
browser to Slack's authorize page. `GET /slack/oauth_redirect` refuses a state no link issued
before Bolt's flow runs; the flow checks the browser cookie, consumes the state, calls
`oauth.v2.access` and saves the installation (tokens sealed, bot/slack_oauth.py); then the
agency's workspace and board channel (the channel the installer picked for the app's incoming
webhook) are stored and the link is used up.

Every Slack request is answered with the token of its own workspace (Bolt's authorize, by team
id), and a board is only a board in the workspace that installed it for its agency.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from slack_bolt import BoltResponse
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow

from bot.adapters.slack import use_workspace_token
from bot.render.slack_install import install_page
from bot.workflow import Agency, Desk, slack_links

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from bot.service import Service

log = logging.getLogger(__name__)

INSTALL_ROUTE = slack_links.INSTALL_PATH + "{token}"
REDIRECT_ROUTE = "/slack/oauth_redirect"
# The workspace of the Slack request being handled (None outside one, and in single-token mode).
_request_team: ContextVar[str | None] = ContextVar("slack_request_team", default=None)


class SlackInstallsPort(Protocol):
    """What the handlers use of bot/slack_oauth.py's `SlackInstalls`."""

    @property
    def box(self) -> slack_links.Signer:
        """Signs and checks the install links."""

    def flow(self, callbacks: AsyncCallbackOptions) -> AsyncOAuthFlow:
        """Bolt's OAuth flow on our stores."""

    @property
    def authorize(self) -> Callable[[str | None, str | None, str | None], Awaitable[AuthorizeResult | None]]:
        """Bolt's authorize: the token that answers a request from its workspace."""

    async def forget_team(self, team_id: str) -> None:
        """Deletes the workspace's installation."""

    async def bot_token(self, agency_id: str) -> str | None:
        """The token the agency's board posts with."""


def workspace_agency(agency: Agency | None) -> Agency | None:
    """The agency, when the request comes from its workspace; an agency connected to another
    workspace (or disconnected) is no board here. Outside OAuth mode every agency counts."""
    team = _request_team.get()
    if agency is None or team is None or agency.slack_team_id is None:
        return agency
    if agency.slack_team_id != team or agency.slack_disconnected_at is not None:
        log.warning("a Slack request from workspace %s named the board of agency %s", team, agency.id)
        return None
    return agency


def join_workspaces(app: AsyncApp, desk: Desk, installs: SlackInstallsPort) -> None:
    """Adds to the bolt app: each request's workspace and token for the listeners, and the
    uninstall and token revocation events."""

    async def in_workspace(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        _request_team.set(context.team_id or "")
        use_workspace_token(context.bot_token)
        await next()

    async def gone(event: dict[str, Any], context: AsyncBoltContext) -> None:
        team_id = str(context.team_id or "")
        if event.get("type") == "tokens_revoked" and not (event.get("tokens") or {}).get("bot"):
            return  # only user tokens went; the board's bot token stands
        if not team_id:
            return
        await installs.forget_team(team_id)
        agencies = await slack_links.disconnect_slack_team(desk, team_id, reason=str(event.get("type")))
        log.warning("Slack workspace %s removed the app (%s); disconnected: %s", team_id, event.get("type"),
                    ", ".join(agencies) or "no agency")  # fmt: skip

    app.use(in_workspace)
    app.event("app_uninstalled")(gone)
    app.event("tokens_revoked")(gone)


def _page(outcome: str, status: int, **values: str) -> HTMLResponse:
    return HTMLResponse(
        install_page(outcome, **values), status_code=status, headers={"Cache-Control": "no-store"}
    )


def _refusal(why: slack_links.LinkInvalid) -> HTMLResponse:
    reason = str(why.details.get("reason") or "invalid")
    return _page(reason, 410 if reason in {"used", "expired"} else 404)


def attach_slack_install(service: Service, installs: SlackInstallsPort) -> None:
    """Adds the install link's route and Slack's redirect back."""
    desk = service.desk

    async def succeeded(args: AsyncSuccessArgs) -> BoltResponse:
        installation = args.installation
        state = (args.request.query.get("state") or [""])[0]
        try:
            connected = await slack_links.connect_agency_slack(
                desk,
                state=state,
                team_id=str(installation.team_id or ""),
                channel_id=installation.incoming_webhook_channel_id,
                installer=str(installation.user_id or ""),
            )
        except slack_links.LinkInvalid as why:
            return _bolt(_refusal(why))
        log.info("agency %s connected Slack workspace %s", connected.agency_id, connected.team_id)
        outcome = "connected" if connected.channel_id else "no_channel"
        spent = args.settings.state_utils.build_set_cookie_for_deletion()
        return _bolt(_page(outcome, 200, agency=connected.agency_id), cookie=spent)

    async def failed(args: AsyncFailureArgs) -> BoltResponse:
        log.warning("a Slack install did not complete: %s", args.reason)
        return _bolt(_page("failed", args.suggested_status_code, reason=args.reason))

    flow = installs.flow(AsyncCallbackOptions(success=succeeded, failure=failed))

    async def install(token: str, request: Request) -> Response:
        """An agency's install link: on to Slack's authorize page, or a page saying why not."""
        bolt_request = to_async_bolt_request(request, b"")
        try:
            link = await slack_links.install_link(desk, token, signer=installs.box)
            state = await flow.issue_new_state(bolt_request)
            await slack_links.begin_install(desk, link, state)
        except slack_links.LinkInvalid as why:
            return _refusal(why)
        response = RedirectResponse(await flow.build_authorize_url(state, bolt_request), status_code=302)
        cookie = flow.settings.state_utils.build_set_cookie_for_new_state(state)
        response.headers.append("Set-Cookie", cookie)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def redirect(request: Request) -> Response:
        """Slack's redirect back with a code (or an error) and the state the link's click issued."""
        state = request.query_params.get("state") or ""
        try:
            await slack_links.link_of_state(desk, state)
        except slack_links.LinkInvalid as why:
            return _refusal(why)
        return to_starlette_response(await flow.handle_callback(to_async_bolt_request(request, b"")))

    service.api.add_api_route(INSTALL_ROUTE, install, methods=["GET"], include_in_schema=False)
    service.api.add_api_route(REDIRECT_ROUTE, redirect, methods=["GET"], include_in_schema=False)


def _bolt(response: HTMLResponse, cookie: str | None = None) -> BoltResponse:
    headers: dict[str, str | Sequence[str]] = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
    }
    if cookie is not None:
        headers["Set-Cookie"] = [cookie]  # the state cookie is spent
    return BoltResponse(status=response.status_code, body=bytes(response.body).decode(), headers=headers)

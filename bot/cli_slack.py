"""`likeness agency connect-slack AGY`: an agency's "Add to Slack" link (registered by bot.cli).

The link is bound to the agency, signed with SECRETS_KEY, good for one install and 7 days; it
needs OAuth mode (SLACK_CLIENT_ID) and PUBLIC_URL, the address the installer's browser reaches.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli_base import JsonFlag, _emit, _fail, _run, _settings, agency_app
from bot.cli_records import ByOption, by_of
from bot.models import utc_iso
from bot.secrets_box import SecretsBox
from bot.workflow import Desk, slack_links


@agency_app.command("connect-slack")
def agency_connect_slack(
    agency_id: Annotated[str, typer.Argument(metavar="AGY", help="The agency's id.")],
    by: ByOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Makes the agency's "Add to Slack" link: one install into its own workspace, valid 7 days."""
    settings = _settings()
    if settings.slack_client_id is None:
        _fail("SLACK_CLIENT_ID is not set: install links need the Slack app's OAuth settings (README)")
    if settings.secrets_key is None:
        _fail("SECRETS_KEY is not set: install links are signed with it")
    if settings.public_url is None:
        _fail("PUBLIC_URL is not set: the link must point at the address installers' browsers reach")
    box = SecretsBox(settings.secrets_key.get_secret_value())

    async def work(desk: Desk) -> slack_links.IssuedLink:
        return await slack_links.issue_install_link(desk, agency_id, by=by_of(by), signer=box)

    issued = _run(work)
    link = f"{settings.public_url}{slack_links.INSTALL_PATH}{issued.token}"
    _emit(
        as_json,
        {"link": link, "agency_id": issued.agency_id, "expires_at": utc_iso(issued.expires_at)},
        f"{link}\n(for {issued.agency_id}; one install, until {utc_iso(issued.expires_at)})",
    )

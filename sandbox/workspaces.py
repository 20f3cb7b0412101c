"""The sandbox's second agency, in a Slack workspace of its own: it joins the one Slack app the
real way, through its install link (`likeness agency connect-slack`), Slack's authorize page and
the redirect back, once the service listens. The simulator forgets its tokens when it stops, so
each start installs again with a fresh link."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from bot.secrets_box import SecretsBox
from bot.workflow import Desk, slack_links
from sandbox.slack import SlackSimulator

log = logging.getLogger("likeness.sandbox")

KEY_FILE = "sandbox_secrets.key"


@dataclass(frozen=True)
class Workspace:
    """A demo agency's own Slack workspace: its team, its board channel and the member who installs."""

    team_id: str
    domain: str
    channel_id: str
    channel_name: str
    installer: str


MOONRISE = Workspace("T0MOONRISE", "moonrise", "C0MOONRISE", "moonrise-board", "U0JUNPARK")


def secrets_key(data_dir: Path) -> str:
    """The sandbox's SECRETS_KEY, made once and kept beside its database (this user only)."""
    path = data_dir / KEY_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    partial = path.with_suffix(".tmp")
    partial.write_text(key + "\n", encoding="utf-8")
    partial.chmod(0o600)
    os.replace(partial, path)
    return key


def open_workspace(slack: SlackSimulator, workspace: Workspace, members: dict[str, str]) -> None:
    """Adds the workspace, its board channel and its members to the simulator."""
    slack.add_workspace(workspace.team_id, workspace.domain)
    slack.add_channel(workspace.channel_id, workspace.channel_name, workspace.team_id)
    slack.add_user(slack.team(workspace.team_id).bot_user_id, "Likeness Consent", workspace.team_id)
    for member_id, name in members.items():
        slack.add_user(member_id, name, workspace.team_id)


async def install(
    desk: Desk, slack: SlackSimulator, base_url: str, key: str, agency_id: str, workspace: Workspace
) -> None:
    """Installs the app for the agency through a fresh install link, as its member's browser would."""
    slack.redirect_url = f"{base_url}/slack/oauth_redirect"
    issued = await slack_links.issue_install_link(desk, agency_id, by="sandbox", signer=SecretsBox(key))
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as browser:
        for _ in range(600):  # the service starts listening right after its start hooks ran
            try:
                if (await browser.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        slack.sign_in(workspace.team_id, workspace.installer, workspace.channel_id)
        to_slack = await browser.get(f"{slack_links.INSTALL_PATH}{issued.token}")
        back = await browser.get(to_slack.headers["location"])
        cookie = to_slack.headers["set-cookie"].split(";")[0]
        done = await browser.get(back.headers["location"], headers={"Cookie": cookie})
    if done.status_code != 200:
        log.warning(
            "sandbox: the install into workspace %s did not complete (%s)",
            workspace.team_id,
            done.status_code,
        )
    else:
        log.info("sandbox: agency %s installed the Slack app in workspace %s", agency_id, workspace.team_id)

"""Two agencies, each in its own Slack workspace (the simulator), installing one Slack app
through their install links against a real `likeness serve`, for the OAuth tests."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bot import workflow
from bot.models import Policy
from bot.workflow import Desk
from sandbox.pg_server import free_port
from sandbox.service_process import ServiceProcess, service_env, start_service
from sandbox.slack import SlackSimulator
from storage.tables import AuditEvent, SlackInstallLink, slack_bots, slack_installations, slack_oauth_states
from tests.slack_fixtures import service_desk

SECRET = "likeness-oauth-signing-secret"
TEAM_A, TEAM_B = "T0ALPHA", "T0BETA"
BOARD_A, BOARD_B = "C0ALPHA", "C0BETA"
AGENT_A, AGENT_B = "U0AGENTA", "U0AGENTB"


async def cli(env: dict[str, str], cwd: Path, *args: str, ok: bool = True) -> tuple[int, Any, str]:
    """Runs one `likeness ... --json` command; (exit code, parsed stdout or None, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, "--json", cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    if ok:
        assert process.returncode == 0, err.decode()
    parsed = json.loads(out) if out.strip() else None
    return int(process.returncode or 0), parsed, err.decode()


@dataclass
class OAuthWorld:
    """The simulator with two workspaces, the service in OAuth mode, two agencies and a desk."""

    sim: SlackSimulator
    service: ServiceProcess
    env: dict[str, str]
    cwd: Path
    desk: Desk
    agencies: dict[str, str]  # team id -> agency id
    artists: dict[str, str]  # team id -> artist id (agency_may_decide)
    creator_key: str

    async def link(self, team: str) -> str:
        """A fresh install link for the agency of this workspace."""
        _, out, _ = await cli(self.env, self.cwd, "agency", "connect-slack", self.agencies[team])
        return str(out["link"])

    async def install(self, link: str, team: str, user: str, channel: str | None) -> httpx.Response:
        """The installer's browser: the link, Slack's authorize page, the redirect back (with the
        state cookie the link set, as a browser keeps it)."""
        self.sim.sign_in(team, user, channel)
        async with httpx.AsyncClient(timeout=10) as browser:
            to_slack = await browser.get(link)
            if to_slack.status_code != 302:
                return to_slack
            cookie = to_slack.headers["set-cookie"].split(";")[0]
            back = await browser.get(to_slack.headers["location"])
            assert back.status_code == 302, back.text
            return await browser.get(back.headers["location"], headers={"Cookie": cookie})

    async def submit(self, team: str) -> str:
        """A request for the artist of this workspace's agency; its id."""
        body = {
            "artist_id": self.artists[team],
            "project_title": f"Drama of {team}",
            "use_description": "A digital double in two scenes.",
            "media": ["series"],
            "likeness": ["face"],
            "territory": ["CN"],
            "starts_at": "2030-01-01T00:00:00Z",
            "ends_at": "2030-03-01T00:00:00Z",
            "ai_training": False,
            "compensation": {"amount": "100", "currency": "CNY"},
        }
        headers = {"Authorization": f"Bearer {self.creator_key}"}
        async with httpx.AsyncClient(base_url=self.service.url, headers=headers, timeout=10) as client:
            answer = await client.post("/v1/requests", json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def counts(self) -> dict[str, int]:
        """Rows in the tables an install writes (and the audit chain), to show nothing was written."""
        counted = {}
        async with self.desk.db.read() as session:
            for name, table in (
                ("states", slack_oauth_states),
                ("installations", slack_installations),
                ("bots", slack_bots),
                ("links", SlackInstallLink.__table__),
                ("audit", AuditEvent.__table__),
            ):
                counted[name] = int(await session.scalar(select(func.count()).select_from(table)) or 0)
            used = (
                select(func.count()).select_from(SlackInstallLink).where(SlackInstallLink.state.is_not(None))
            )
            counted["clicked"] = int(await session.scalar(used) or 0)
        return counted


async def start_oauth_world(tmp_path: Path) -> OAuthWorld:
    """Starts the simulator (two workspaces), the service in OAuth mode, and makes the parties."""
    sim = SlackSimulator(signing_secret=SECRET)
    for team, domain, board, agent in (
        (TEAM_A, "alpha-agency", BOARD_A, AGENT_A),
        (TEAM_B, "beta-agency", BOARD_B, AGENT_B),
    ):
        sim.add_workspace(team, domain)
        sim.add_channel(board, f"{domain}-board", team)
        sim.add_user(agent, f"{domain}.agent", team)
    await sim.start()
    port = free_port()  # the service's PUBLIC_URL must be known before it starts
    env = service_env(
        tmp_path,
        SLACK_CLIENT_ID=sim.client_id,
        SLACK_CLIENT_SECRET=sim.client_secret,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_BASE_URL=sim.api_base_url,
        SECRETS_KEY=Fernet.generate_key().decode(),
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        HTTP_PORT=str(port),
        CLOCK_CONTROL="true",
        SWEEP_INTERVAL="1h",
    )
    desk = service_desk(env)
    await desk.db.upgrade()
    # The parties are made in-process (the CLI's own tests cover the commands): five CLI starts
    # per world were most of these tests' time.
    agencies, artists = {}, {}
    for team, agent in ((TEAM_A, AGENT_A), (TEAM_B, AGENT_B)):
        agency = await workflow.add_agency(desk, name=f"Agency {team}", slack_member_ids=[agent])
        artist = await workflow.add_artist(
            desk, name=f"Artist {team}", agency_id=agency.id, policy=Policy.agency_may_decide
        )
        agencies[team], artists[team] = agency.id, artist.id
    creator = await workflow.add_creator(desk, name="Dream Studio")
    service = await asyncio.to_thread(start_service, env, tmp_path, tag="slack-oauth")
    sim.app_url = service.url + "/slack/events"
    return OAuthWorld(sim, service, env, tmp_path, desk, agencies, artists, creator.api_key)


async def stop_oauth_world(world: OAuthWorld) -> None:
    """Stops what start_oauth_world started."""
    await asyncio.to_thread(world.service.stop)
    await world.desk.db.dispose()
    await world.sim.stop()

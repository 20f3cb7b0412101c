"""Hostile callers of the Slack install: a forged or replayed OAuth state, a click-through from
another browser, odd install links, and a request that claims the wrong workspace. Each is
refused with a page (4xx, never 5xx) and writes nothing. In-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bot import workflow
from bot.secrets_box import SecretsBox
from bot.workflow import slack_links
from storage.tables import AuditEvent, slack_bots
from tests.faults.hostile_world import Hostile, open_world

KEY = Fernet.generate_key().decode()
TEAM, CHANNEL, INSTALLER = "T0INSTALLED", "C0INSTALLED", "U0INSTALLER"


@pytest.fixture
async def hostile(
    migrated_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Hostile]:
    async with open_world(
        migrated_url,
        tmp_path,
        caplog,
        slack_client_id="sandbox-client-id",
        slack_client_secret="sandbox-client-secret",
        secrets_key=KEY,
    ) as world:
        world.slack.add_workspace(TEAM, "installed-agency")
        world.slack.add_channel(CHANNEL, "installed-board", TEAM)
        world.slack.add_user(INSTALLER, "installer", TEAM)
        world.slack.redirect_url = f"{world.url}/slack/oauth_redirect"
        yield world
    assert world.tracebacks() == []


async def _link(world: Hostile) -> str:
    issued = await slack_links.issue_install_link(
        world.service.desk, world.agency_id, by="tester", signer=SecretsBox(KEY)
    )
    return f"{world.url}{slack_links.INSTALL_PATH}{issued.token}"


async def _to_slack(world: Hostile, link: str) -> tuple[str, str]:
    """Clicks the link; Slack's authorize URL and the state cookie."""
    answer = await world.http.get(link)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"], answer.headers["set-cookie"].split(";")[0]


async def _back_from_slack(world: Hostile, authorize: str) -> str:
    """Slack's authorize page approves as the installer; the redirect URL it sends back."""
    world.slack.sign_in(TEAM, INSTALLER, CHANNEL)
    answer = await world.http.get(authorize)
    assert answer.status_code == 302
    return answer.headers["location"]


async def test_a_forged_state_is_refused_before_slack_is_asked(hostile: Hostile) -> None:
    before = await hostile.rows()
    for query in ("code=123.abc&state=forged", "code=1&state=", "state=" + "x" * 5000, "error=access_denied"):
        answer = await hostile.http.get(f"{hostile.url}/slack/oauth_redirect?{query}")
        assert answer.status_code == 404, (query, answer.status_code)
        assert "install link" in answer.text
    assert await hostile.rows() == before
    assert hostile.slack.calls("oauth.v2.access") == []


async def test_odd_install_links_are_refused_and_write_nothing(hostile: Hostile) -> None:
    link = await _link(hostile)
    base, _, token = link.rpartition("/")
    before = await hostile.rows()
    for odd in (
        token[:-1] + ("0" if token[-1] != "0" else "1"),
        token + "." + token,
        "sil_" + "é" * 10,
        token.split(".")[0] + ".é" * 3,
        "x" * 500,
        "%00",
    ):
        answer = await hostile.http.get(f"{base}/{odd}")
        assert answer.status_code in (404, 410), (odd, answer.status_code)
    assert await hostile.rows() == before


async def test_a_redirect_in_another_browser_or_with_a_spent_state_installs_nothing(hostile: Hostile) -> None:
    authorize, cookie = await _to_slack(hostile, await _link(hostile))
    back = await _back_from_slack(hostile, authorize)
    before = await hostile.rows()

    elsewhere = await hostile.http.get(back)  # no state cookie: not the browser that clicked
    assert elsewhere.status_code == 400
    assert await hostile.rows() == before
    assert hostile.slack.calls("oauth.v2.access") == []

    installed = await hostile.http.get(back, headers={"Cookie": cookie})
    assert installed.status_code == 200, installed.text
    after = await hostile.rows()
    replayed = await hostile.http.get(back, headers={"Cookie": cookie})  # the same redirect again
    assert replayed.status_code == 410
    assert await hostile.rows() == after
    assert len(hostile.slack.calls("oauth.v2.access")) == 1


async def test_a_request_claiming_another_workspace_finds_no_board(hostile: Hostile) -> None:
    authorize, cookie = await _to_slack(hostile, await _link(hostile))
    back = await _back_from_slack(hostile, authorize)
    assert (await hostile.http.get(back, headers={"Cookie": cookie})).status_code == 200
    sim = hostile.slack

    def answers() -> list[str]:
        return [e["text"] for e in sim.ephemerals(channel=CHANNEL, user=INSTALLER)]

    await sim.slash_command(INSTALLER, CHANNEL, text="pending")
    own = await sim.wait_for(answers)  # answered through the response_url, after the ack
    assert "no agency's board" not in own[-1]  # from its own workspace: the agency's board

    # Signed as Slack, from the SLACK_BOT_TOKEN workspace, naming the installed agency's channel.
    answer = await sim.slash_command(INSTALLER, CHANNEL, text="pending", team_id=sim.team_id)

    assert answer.status == 200
    said = await sim.wait_for(lambda: answers()[len(own) :])
    assert "no agency's board" in said[0]
    assert hostile.lines("named the board of agency")


async def test_a_revoked_bot_token_disconnects_the_agency_on_the_record(hostile: Hostile) -> None:
    authorize, cookie = await _to_slack(hostile, await _link(hostile))
    back = await _back_from_slack(hostile, authorize)
    assert (await hostile.http.get(back, headers={"Cookie": cookie})).status_code == 200

    answer = await hostile.slack.revoke_tokens(TEAM)

    assert answer.status == 200  # acknowledged at once; the listener runs after the ack
    deadline = asyncio.get_running_loop().time() + 10
    while (await workflow.show_agency(hostile.service.desk, hostile.agency_id))[
        "slack_status"
    ] != "disconnected":
        assert asyncio.get_running_loop().time() < deadline, "the agency was not disconnected"
        await asyncio.sleep(0.05)
    async with hostile.service.desk.db.read() as session:
        actions = list(
            (
                await session.execute(
                    select(AuditEvent.action)
                    .where(AuditEvent.subject_id == hostile.agency_id)
                    .order_by(AuditEvent.seq)
                )
            ).scalars()
        )
        bots = await session.scalar(select(func.count()).select_from(slack_bots))
    assert actions[-2:] == ["agency.slack_connected", "agency.slack_disconnected"]
    assert bots == 0


async def test_a_forged_code_with_a_real_state_installs_nothing_and_the_link_still_works(
    hostile: Hostile,
) -> None:
    link = await _link(hostile)
    authorize, cookie = await _to_slack(hostile, link)
    back = await _back_from_slack(hostile, authorize)
    forged = back.replace("code=", "code=forged", 1)
    before = await hostile.rows()

    refused = await hostile.http.get(forged, headers={"Cookie": cookie})

    assert refused.status_code == 401 and "invalid_code" in refused.text
    after = await hostile.rows()
    assert after["slack_installations"] == before["slack_installations"] == 0
    assert after["slack_oauth_states"] == before["slack_oauth_states"] - 1  # the state is spent
    authorize, cookie = await _to_slack(hostile, link)  # the link is still good for one install
    back = await _back_from_slack(hostile, authorize)
    assert (await hostile.http.get(back, headers={"Cookie": cookie})).status_code == 200

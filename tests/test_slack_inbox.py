"""A deciding Slack click goes through the inbox: the same click sent again (newly signed, as a
retry would be) is acknowledged and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.slack.interactions import sign_request
from tests.faults.world import AGENT, SIGNING_SECRET, close_world, open_world

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_slack_sending_a_click_again_has_one_effect(tmp_path: Path) -> None:
    world = await open_world(tmp_path)
    try:
        board = await world.board("Repeat Agency")
        assert board.channel is not None
        artist = await world.artist("Repeat Artist", board)
        creator = await world.creator("Repeat Studio", webhook=False)
        await world.start()
        async with world.client() as http:
            now = await world.service_now(http)
            filed = await http.post(
                f"{world.url}/v1/requests",
                json=world.terms(artist, now),
                headers={"Authorization": f"Bearer {creator.api_key}"},
            )
            assert filed.status_code == 201, filed.text
            request_id = filed.json()["id"]
            [root] = await world.slack.wait_for(lambda: world.roots(board.channel, request_id))
            first = await world.slack.click(AGENT, board.channel, root["ts"], "board_approve")
            assert first.status == 200
            db = world.watch
            assert db is not None
            await db.wait_for(lambda: db.rows("SELECT id FROM decisions WHERE request_id = ?", request_id))

            # The same click, signed anew (another timestamp, so no replay of the first request).
            sent = world.slack.sent_to_app()[-1]
            timestamp = str(int(sent["headers"]["X-Slack-Request-Timestamp"]) - 1)
            again = await http.post(
                f"{world.url}/slack/events",
                content=sent["body"].encode(),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": timestamp,
                    "X-Slack-Signature": sign_request(SIGNING_SECRET, timestamp, sent["body"]),
                },
            )

        assert again.status_code == 200
        events = db.rows(
            "SELECT action FROM audit_events WHERE subject_id = ? AND action LIKE 'decision.%'", request_id
        )
        assert events == [("decision.approve",)]
        assert db.rows("SELECT key FROM inbox WHERE done_at IS NULL") == []
        assert world.slack.ephemerals(user=AGENT) == []  # no "already decided" told either
    finally:
        await close_world(world)

"""What the board shows (bot/render/slack.py), rendered from requests made through the workflow."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot import workflow
from bot.clock import FrozenClock
from bot.models import Outcome, Policy, RedLines, Sensitive
from bot.render import buttons
from bot.render import slack as board
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, submit
from storage.queries import RequestView, load_request_view
from tests.test_slack_words import EVENTS


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """Rendering does not depend on the database; the workflow's own tests cover both."""
    return sqlite_url


async def view_of(desk: Desk, request_id: str) -> RequestView:
    """The request as the sender loads it."""
    async with desk.db.transaction() as session:
        view = await load_request_view(session, request_id)
    assert view is not None
    return view


def action_ids(view: RequestView) -> list[str]:
    """The buttons on the root message."""
    return [b["action_id"] for b in board.decision_buttons(view, workflow.agency_outcomes(view))]


async def decide(desk: Desk, parties: Parties, request_id: str, who: str, outcome: Outcome) -> None:
    """The artist (in Telegram) or the agency member (in Slack) decides."""
    actor = parties.artist() if who == "artist" else parties.agency()
    view = await view_of(desk, request_id)
    await workflow.decide(
        desk,
        request_id=request_id,
        actor=actor,
        outcome=outcome,
        terms_hash=view.request.terms_hash,
        ai_training_confirmed=True,
    )


@pytest.mark.parametrize(
    ("policy", "ai_training", "shown"),
    [
        (Policy.artist_only, False, ["board_nudge"]),
        (Policy.artist_only, True, ["board_nudge"]),
        (Policy.agency_may_decide, False, ["board_approve", "board_deny", "board_nudge"]),
        (Policy.agency_may_decide, True, ["board_deny", "board_nudge"]),
        (Policy.both_required, False, ["board_approve", "board_deny", "board_nudge"]),
    ],
)
async def test_buttons_follow_the_artists_policy(
    desk: Desk, policy: Policy, ai_training: bool, shown: list[str]
) -> None:
    parties = await make_parties(desk, policy=policy)
    view = (await submit(desk, parties, ai_training=ai_training)).view
    assert action_ids(view) == shown


async def test_both_required_shows_what_each_side_still_owes(desk: Desk, clock: FrozenClock) -> None:
    parties = await make_parties(desk, policy=Policy.both_required)
    agency_first = (await submit(desk, parties)).view.request.id
    await decide(desk, parties, agency_first, "agency", Outcome.approve)
    waiting = await view_of(desk, agency_first)
    assert action_ids(waiting) == ["board_nudge"]
    assert "waiting for the artist to co-sign" in board.status_line(waiting)

    artist_first = (await submit(desk, parties)).view.request.id
    await decide(desk, parties, artist_first, "artist", Outcome.approve)
    cosign = await view_of(desk, artist_first)
    assert action_ids(cosign) == ["board_approve", "board_deny"]
    assert "waiting for the agency to co-sign" in board.status_line(cosign)

    clock.advance(timedelta(minutes=5))
    await decide(desk, parties, artist_first, "agency", Outcome.approve)
    signed = await view_of(desk, artist_first)
    assert action_ids(signed) == []
    assert board.status_line(signed).startswith(
        ":white_check_mark: *Approved* by *the artist* (the artist, in Telegram) "
        "and *agent* (for the agency, in Slack)"
    )


async def test_text_from_creators_is_escaped_so_it_can_never_ping_or_link(desk: Desk) -> None:
    parties = await make_parties(desk)
    view = (
        await submit(
            desk,
            parties,
            project_title="<!channel> Moon & <https://evil.example|click>",
            use_description="Scenes for <!here> with a <@U0BOSS> mention and more words.",
        )
    ).view
    message = board.root_message(view)
    shown = message.text + str([b for b in message.blocks if b["type"] != "header"])
    assert "<!channel>" not in shown and "<!here>" not in shown and "<@U0BOSS>" not in shown
    assert "&lt;!channel&gt; Moon &amp; &lt;https://evil.example|click&gt;" in message.text
    # The header is plain text, which Slack never parses, so it keeps the title as written.
    assert message.blocks[0]["text"] == {
        "type": "plain_text",
        "text": "🎭 <!channel> Moon & <https://evil.example|click>",
    }
    assert message.metadata == {
        "event_type": "likeness_request",
        "event_payload": {"request_id": view.request.id, "status": "pending"},
    }


async def test_sensitive_flags_come_first_in_bold_and_ai_training_is_called_out(desk: Desk) -> None:
    parties = await make_parties(desk)
    view = (await submit(desk, parties, sensitive=["sexual_content", "endorsement"], ai_training=True)).view
    blocks = board.request_blocks(view)
    assert blocks[1]["text"]["text"] == ":warning: *Sensitive:* *endorsement*, *sexual content*"
    assert blocks[2]["text"]["text"].startswith(":robot_face: *AI training requested*")
    assert "only *Li Wei* can approve it" in blocks[2]["text"]["text"]
    assert "(AI training requested)" in board.root_message(view).text


async def test_a_red_line_denial_says_so(desk: Desk) -> None:
    parties = await make_parties(desk, red_lines=RedLines(sensitive=[Sensitive.political]))
    view = (await submit(desk, parties, sensitive=["political"])).view
    assert board.status_line(view).startswith(
        ":no_entry_sign: *Denied at once: it crosses one of the artist's"
    )
    assert action_ids(view) == []


async def test_every_board_event_has_its_own_thread_line(desk: Desk) -> None:
    parties = await make_parties(desk)
    view = (await submit(desk, parties)).view
    lines = {event: board.thread_reply(view, {"event": event} | extra) for event, extra in EVENTS.items()}
    assert len(set(lines.values())) == len(EVENTS)
    assert not [line for line in lines.values() if line.startswith("Update:")]
    assert "<!date^1795597200^" in lines["request.approved"] and "in Telegram" in lines["request.approved"]
    assert lines["request.nudged"].startswith(":bell: <@U100> nudged Li Wei")
    assert board.thread_reply(view, {"event": "something.new"}) == "Update: something.new"


async def test_a_lost_race_says_who_decided_where_and_when(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    request_id = (await submit(desk, parties)).view.request.id
    await decide(desk, parties, request_id, "artist", Outcome.approve)
    with pytest.raises(workflow.AlreadyDecided) as lost:
        await decide(desk, parties, request_id, "agency", Outcome.deny)
    text = board.refusal_text(lost.value)
    assert text.startswith(
        ":lock: Too late: it is *approved* — decided by *the artist* (the artist, in Telegram) at <!date^"
    )


def test_button_values_and_deny_forms_round_trip_and_foreign_ones_are_refused() -> None:
    assert buttons.parse_button_value(buttons.button_value("req_1", "ab" * 32)) == ("req_1", "ab" * 32)
    with pytest.raises(ValueError):
        buttons.parse_button_value("hello")
    with pytest.raises(ValueError):
        buttons.parse_deny_form('{"r": "req_1"}')
    with pytest.raises(ValueError):
        buttons.parse_deny_form("not json")
    assert board.escape("a<b>&c") == "a&lt;b&gt;&amp;c"

"""The refusals a hostile caller meets: another creator's grants, forged and borrowed buttons,
unsigned and replayed Slack requests; each is refused, audited and changes nothing. Last, a burst
of mistakes, and a scan of everything the service said for its secrets.
"""

from __future__ import annotations

import pytest

from bot.adapters.webhook import verify_webhook
from tests.faults.exposed import (
    Exposed,
    approve,
    audit_since,
    file_request,
    last_seq,
    outcome,
    row_counts,
    said_by,
    secrets_of,
    settled,
)
from tests.faults.world import (
    AGENT,
    TELEGRAM_WEBHOOK_SECRET,
    TOKEN,
    callback_data,
    keyboard,
    utc_now,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_another_creators_grant_receipt_usage_and_withdrawal_are_not_found_audited_and_change_nothing(
    exposed: Exposed,
) -> None:
    world = exposed.world
    owner, other = exposed.artists[0], exposed.artists[1]
    pending = await file_request(world, exposed.studio, owner)
    grant = await approve(world, await file_request(world, exposed.studio, other), other)
    rival = {"Authorization": f"Bearer {exposed.rival.api_key}"}
    await settled(world)  # the cards and board posts of these two are out: nothing moves by itself
    before, seq = row_counts(world), last_seq(world)

    async with world.client(base_url=world.url, headers=rival) as http:
        answers = [
            await http.get(f"/v1/grants/{grant}"),
            await http.get(f"/v1/grants/{grant}/receipt"),
            await http.post(
                f"/v1/grants/{grant}/usage", json={"kind": "render", "count": 2, "likeness": ["face"]}
            ),
            await http.post(f"/v1/requests/{pending}/withdraw"),
        ]

    assert [a.status_code for a in answers] == [404] * 4, [a.text for a in answers]
    assert all(exposed.studio.creator_id not in a.text for a in answers)  # nothing about the owner
    # The two attempts to change something are in the audit chain; nothing else moved.
    assert audit_since(world, seq) == [
        ("creator", exposed.rival.creator_id, "usage.record.refused", grant),
        ("creator", exposed.rival.creator_id, "request.withdraw.refused", pending),
    ]
    assert row_counts(world) == before | {"audit_events": before["audit_events"] + 2}
    owner_auth = {"Authorization": f"Bearer {exposed.studio.api_key}"}
    async with world.client(base_url=world.url, headers=owner_auth) as http:
        assert (await http.get(f"/v1/requests/{pending}")).json()["status"] == "pending"
        assert (await http.get(f"/v1/grants/{grant}")).status_code == 200


async def test_a_creators_webhook_verifies_only_with_its_own_secret(exposed: Exposed) -> None:
    world = exposed.world
    request_id = await file_request(world, exposed.studio, exposed.artists[2])
    event = await world.hooks.wait_for(
        lambda: next(
            (
                r
                for r in world.hooks.received
                if r.status == 200 and r.event["data"]["request_id"] == request_id
            ),
            None,
        )
    )
    stamp, signature = event.headers["Likeness-Timestamp"], event.headers["Likeness-Signature"]
    assert exposed.studio.webhook_secret and exposed.rival.webhook_secret

    assert verify_webhook(exposed.studio.webhook_secret, stamp, event.body, signature)
    assert not verify_webhook(exposed.rival.webhook_secret, stamp, event.body, signature)  # another's
    assert not verify_webhook(exposed.studio.webhook_secret + "x", stamp, event.body, signature)
    assert not verify_webhook(
        exposed.studio.webhook_secret, stamp, event.body.replace(b"pending", b"approved"), signature
    )


async def test_a_genuine_button_tapped_from_another_chat_is_refused_audited_and_changes_nothing(
    exposed: Exposed,
) -> None:
    world = exposed.world
    victim, other_artist = exposed.artists[3], exposed.artists[4]
    request_id = await file_request(world, exposed.studio, victim)
    card = (await world.tg.wait_for(lambda: world.cards(victim.user_id, request_id)))[0]
    genuine = callback_data(card, "Approve")
    stranger = world.stranger("Mallory")
    seq = last_seq(world)

    answers = []
    for user in (stranger, other_artist.user_id):
        # Each gets a message from the bot in their own chat, and puts the victim's button data on it.
        seen = len(world.tg.messages(user, TOKEN))
        await world.tg.send_text(TOKEN, user, "/help")
        own = await world.tg.wait_for(lambda u=user, n=seen: world.tg.messages(u, TOKEN)[n:])
        query = await world.tg.tap(TOKEN, user, user, own[0]["message_id"], callback_data=genuine)
        answers.append(await world.tg.wait_for(lambda q=query: world.tg.callback_answer(q)))

    assert all(a["show_alert"] and a["text"].startswith("Only the artist") for a in answers), answers
    assert (await outcome(world, request_id))[:2] == ("pending", [])
    assert keyboard(world.cards(victim.user_id, request_id)[-1]) == ["Approve", "Deny"]
    refusals = [
        (kind, actor)
        for kind, actor, action, subject in audit_since(world, seq)
        if subject == request_id and action == "decision.approve.refused"
    ]
    assert refusals == [("stranger", str(stranger)), ("artist", other_artist.artist_id)]


async def test_forged_callback_data_is_refused_audited_and_changes_nothing(exposed: Exposed) -> None:
    world = exposed.world
    artist, victim = exposed.artists[5], exposed.artists[6]
    mine = await file_request(world, exposed.studio, artist)
    theirs = await file_request(world, exposed.studio, victim)
    card = (await world.tg.wait_for(lambda: world.cards(artist.user_id, mine)))[0]
    genuine = callback_data(card, "Approve")
    forged = [
        genuine.replace(mine, theirs),  # another request under this one's MAC
        genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB"),  # a changed MAC
        f"ok:{theirs}",  # no MAC at all
    ]
    seq = last_seq(world)

    for data in forged:
        query = await world.tg.tap(
            TOKEN, artist.user_id, artist.user_id, card["message_id"], callback_data=data
        )
        answer = await world.tg.wait_for(lambda q=query: world.tg.callback_answer(q))
        assert answer["show_alert"] and answer["text"] == "This button is not valid.", answer
    for request_id in (mine, theirs):
        assert (await outcome(world, request_id))[:2] == ("pending", []), request_id
    # Each forged tap is on the record, as the artist who sent it; nothing else happened.
    audited = [(kind, actor, action) for kind, actor, action, _subject in audit_since(world, seq)]
    assert audited == [("artist", artist.artist_id, "button.refused")] * len(forged)


async def test_unsigned_and_replayed_slack_requests_are_refused_audited_and_change_nothing(
    exposed: Exposed,
) -> None:
    world = exposed.world
    artist = exposed.artists[7]
    channel = artist.board.channel
    request_id = await file_request(world, exposed.studio, artist)
    root = (await world.slack.wait_for(lambda: world.roots(channel, request_id)))[0]
    seq = last_seq(world)

    statuses = []
    for tamper in ("bad_signature", "stale_timestamp", "missing_signature"):
        answer = await world.slack.click(AGENT, channel, root["ts"], "board_approve", tamper=tamper)
        statuses.append(answer.status)
    genuine = await world.slack.click(AGENT, channel, root["ts"], "board_nudge")
    await world.slack.wait_for(lambda: world.slack.thread(channel, root["ts"]))  # the nudge went through
    replay = await world.slack.replay_last()
    assert statuses == [401, 401, 401] and genuine.status == 200
    assert replay.status == 401 and "replayed" in replay.body
    assert (await outcome(world, request_id))[:2] == ("pending", [])
    # The genuine nudge is the only thing that happened; each refusal is on the record.
    new = audit_since(world, seq)
    assert [e for e in new if e[2] != "slack.request.refused"] == [
        ("agency", AGENT, "request.nudged", request_id)
    ]
    assert [e[2] for e in new].count("slack.request.refused") == len(statuses) + 1, new


# ---------------------------------------------------------------- last: what the service said


async def test_no_secret_appears_in_the_fault_burst_log_or_in_any_answer(exposed: Exposed) -> None:
    world = exposed.world
    owner = exposed.artists[8]
    studio = {"Authorization": f"Bearer {exposed.studio.api_key}"}
    # A burst of mistakes on top of the storms and refusals above: every one of them is answered
    # and most are logged, and none may carry a secret.
    request_id = await file_request(world, exposed.studio, owner)
    grant = await approve(world, await file_request(world, exposed.studio, owner), owner)
    async with world.client(base_url=world.url) as http:
        body = world.terms(owner, utc_now())
        mistakes = [
            await http.post(
                "/v1/requests", content=b"{not json", headers=studio | {"Content-Type": "application/json"}
            ),
            await http.post(
                "/v1/requests", content=b"artist=1", headers=studio | {"Content-Type": "text/plain"}
            ),
            await http.post("/v1/requests", json=body | {"media": ["hologram"]}, headers=studio),
            await http.post(
                "/v1/requests", json=body | {"artist_id": "art_0000000000000000"}, headers=studio
            ),
            await http.post("/v1/requests", json=body, headers={"Authorization": "Bearer lk_not-a-key"}),
            await http.post("/v1/requests", json=body),
            await http.post("/v1/requests", json=body, headers=studio | {"Idempotency-Key": "k-1"}),
            await http.post(
                "/v1/requests",
                json=body | {"project_title": "Other"},
                headers=studio | {"Idempotency-Key": "k-1"},
            ),
            await http.post(f"/v1/requests/{request_id}/withdraw", headers=studio),
            await http.post(f"/v1/requests/{request_id}/withdraw", headers=studio),
            await http.post(
                f"/v1/grants/{grant}/usage", json={"kind": "train", "likeness": ["face"]}, headers=studio
            ),
            await http.post(
                "/telegram/webhook",
                json={"update_id": 1},
                headers={"X-Telegram-Bot-Api-Secret-Token": "guess"},
            ),
            await http.post(
                "/telegram/webhook",
                content=b"[1,",
                headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_WEBHOOK_SECRET},
            ),
            await http.post(
                "/slack/events",
                content=b"payload=%7B%7D",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            await http.post("/control/clock", json={"skip": "forever"}),
        ]
    assert [m.status_code for m in mistakes] == [
        400,
        415,
        422,
        422,
        401,
        401,
        201,
        422,
        200,
        409,
        409,
        403,
        400,
        401,
        422,
    ], [(m.status_code, m.text[:80]) for m in mistakes]
    await world.stop()  # the log is complete once the service has exited

    secrets = secrets_of(exposed)
    said = said_by(world)
    assert len(world.answers) >= len(mistakes) and "401" in said["HTTP answers"]
    assert " WARNING " in said["stderr log"]  # the burst's errors were logged...
    leaks = [
        (what, where) for what, secret in secrets.items() for where, text in said.items() if secret in text
    ]
    assert leaks == []  # ...and no secret went with them

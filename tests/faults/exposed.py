"""One service with every secret set (webhook mode for Telegram), shared by the tests of a module,
and the reads the storm and hostile-caller tests make of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from bot.models import Actor as WorkflowActor
from bot.models import ActorKind, ChannelKind
from storage.tables import Decision, Grant, Request
from tests.faults.world import (
    SIGNING_SECRET,
    SLACK_TOKEN,
    TELEGRAM_WEBHOOK_SECRET,
    TOKEN,
    Artist,
    Creator,
    FaultWorld,
    utc_now,
)
from tests.test_workflow import approve as approve_as


@dataclass
class Exposed:
    """A service with every secret configured (webhook mode for Telegram), and its parties."""

    world: FaultWorld
    artists: list[Artist]
    studio: Creator
    rival: Creator

    def by_board(self) -> list[Artist]:
        """The first artist of each board."""
        seen: dict[str, Artist] = {}
        for artist in self.artists:
            seen.setdefault(artist.board.channel, artist)
        return list(seen.values())


async def file_request(world: FaultWorld, creator: Creator, artist: Artist, **overrides: Any) -> str:
    """Files a request through the API as `creator`; its id."""
    async with world.client() as http:
        answer = await http.post(
            f"{world.url}/v1/requests",
            json=world.terms(artist, utc_now(), **overrides),
            headers={"Authorization": f"Bearer {creator.api_key}"},
        )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def approve(world: FaultWorld, request_id: str, artist: Artist) -> str:
    """The artist's approval, as the Telegram handler records it; the grant's id."""
    actor = WorkflowActor(ActorKind.artist, artist.artist_id, ChannelKind.telegram, display="artist")
    decided = await approve_as(world.desk, request_id, actor)
    assert decided.view.grant is not None
    return decided.view.grant.id


async def settled(world: FaultWorld) -> None:
    """Waits until the outbox has sent everything queued so far."""
    db = world.watch
    assert db is not None
    await db.wait_for(lambda: db.value("SELECT count(*) FROM notices WHERE status = 'pending'") == 0)


def row_counts(world: FaultWorld) -> dict[str, int]:
    assert world.watch is not None
    tables = [name for (name,) in world.watch.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: int(world.watch.value(f'SELECT count(*) FROM "{t}"')) for t in tables}


def audit_since(world: FaultWorld, seq: int) -> list[tuple[str, str, str, str]]:
    """(actor kind, actor id, action, subject) of every audit event after `seq`."""
    assert world.watch is not None
    return [
        (a, b, c, d)
        for a, b, c, d in world.watch.rows(
            "SELECT actor_kind, actor_id, action, subject_id FROM audit_events WHERE seq > ? ORDER BY seq",
            seq,
        )
    ]


def last_seq(world: FaultWorld) -> int:
    assert world.watch is not None
    return int(world.watch.value("SELECT coalesce(max(seq), 0) FROM audit_events"))


async def outcome(world: FaultWorld, request_id: str) -> tuple[str, list[tuple[str, str]], int]:
    """The request's status, its decisions (actor kind, outcome) and how many grants it has."""
    async with world.desk.db.read() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        decisions = await session.execute(
            select(Decision.actor_kind, Decision.outcome).where(Decision.request_id == request_id)
        )
        grants = await session.execute(
            select(func.count()).select_from(Grant).where(Grant.request_id == request_id)
        )
        return request.status, [(a, b) for a, b in decisions.tuples()], int(grants.scalar_one())


def secrets_of(exposed: Exposed) -> dict[str, str]:
    """Every secret the exposed service and its parties hold, by name."""
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "the bot token's secret half": TOKEN.split(":", 1)[1],
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_WEBHOOK_SECRET,
        "the studio's API key": exposed.studio.api_key,
        "the rival's API key": exposed.rival.api_key,
        "the studio's webhook secret": str(exposed.studio.webhook_secret),
        "the rival's webhook secret": str(exposed.rival.webhook_secret),
    }


def said_by(world: FaultWorld) -> dict[str, str]:
    """Everything the service said, by where it went: its log, its answers, its calls to the platforms."""
    return {
        "stderr log": world.log(),
        "HTTP answers": "\n".join(f"{a.status_code} {dict(a.headers)} {a.text}" for a in world.answers),
        "answers to Slack": json.dumps([(s["status"], s["answer"]) for s in world.slack.sent_to_app()]),
        "calls to Slack": json.dumps(world.slack.calls(), default=str),
        # setWebhook is where the webhook secret must go: Telegram sends it back with every update.
        "calls to Telegram": json.dumps(
            [c | {"params": c["params"] | {"secret_token": ""}} for c in world.tg.calls()], default=str
        ),
        "answers to taps": json.dumps([world.tg.callback_answer(q) for q in world.tg._queries]),
        "webhook events": "\n".join(r.body.decode() for r in world.hooks.received),
    }

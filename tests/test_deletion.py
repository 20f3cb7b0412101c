"""Deletion is confirmed, not assumed: owed when a grant is revoked or an AI-training grant ends,
confirmed once with a signed receipt, reminded and escalated until then; on both databases."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot import workflow
from bot.clock import FrozenClock
from bot.config import ConfigError, load_settings
from bot.receipts import ReceiptError, parse_keys_document, verify_receipt
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, submit
from storage.tables import AuditEvent, Deletion, Notice
from tests.test_api import auth
from tests.test_workflow import approve, link_artist, row_counts

STATEMENT = "All training data, LoRA weights and cached renders of the likeness were erased."
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
async def parties(desk: Desk) -> Parties:
    parties = await make_parties(desk, webhook_url=HOOK)
    await link_artist(desk, parties.artist_id)
    return parties


async def granted(desk: Desk, parties: Parties, *, ai_training: bool = False, days: int = 30) -> str:
    """An approved grant whose window opens a minute from now and runs `days` days."""
    now = desk.clock.now()
    submitted = await submit(
        desk,
        parties,
        ai_training=ai_training,
        starts_at=(now + timedelta(minutes=1)).isoformat(),
        ends_at=(now + timedelta(days=days)).isoformat(),
        decision_due_at=(now + timedelta(seconds=30)).isoformat(),
    )
    decided = await approve(
        desk, submitted.view.request.id, parties.artist(), ai_training_confirmed=ai_training
    )
    assert decided.view.grant is not None
    return decided.view.grant.id


async def revoked(desk: Desk, parties: Parties, clock: FrozenClock, **kw: Any) -> str:
    grant_id = await granted(desk, parties, **kw)
    clock.advance(timedelta(days=1))
    await workflow.revoke_grant(desk, grant_id=grant_id, actor=parties.artist())
    return grant_id


async def grant_notices(desk: Desk, grant_id: str) -> list[Notice]:
    async with desk.db.read() as session:
        rows = await session.execute(
            select(Notice).where(Notice.grant_id == grant_id).order_by(Notice.created_at, Notice.id)
        )
        return list(rows.scalars())


async def audit_actions(desk: Desk, grant_id: str) -> list[str]:
    async with desk.db.read() as session:
        rows = await session.execute(
            select(AuditEvent.action).where(AuditEvent.subject_id == grant_id).order_by(AuditEvent.seq)
        )
        return list(rows.scalars())


def events(notices: list[Notice], event: str, channel: str = "webhook") -> list[dict[str, Any]]:
    return [n.payload for n in notices if n.channel == channel and n.payload.get("event") == event]


async def confirm(api: httpx.AsyncClient, parties: Parties, grant_id: str, **body: Any) -> httpx.Response:
    data = {"statement": STATEMENT} | body
    return await api.post(f"/v1/grants/{grant_id}/deletion", json=data, headers=auth(parties))


# ---------------------------------------------------------------- owed


async def test_revoking_any_grant_owes_a_deletion_due_at_the_moment_of_revocation(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    grant_id = await revoked(desk, parties, clock, ai_training=False)

    body = (await api.get(f"/v1/grants/{grant_id}", headers=auth(parties))).json()

    assert body["status"] == "revoked"
    deletion = body["deletion"]
    assert deletion["status"] == "due" and deletion["confirmed_at"] is None
    assert datetime.fromisoformat(deletion["due_at"]) == clock.now()
    assert deletion["cause"] == "revoked"
    assert "deletion.due" in await audit_actions(desk, grant_id)
    [due] = events(await grant_notices(desk, grant_id), "deletion.due")
    assert due["confirm_at"] == f"/v1/grants/{grant_id}/deletion"


async def test_an_ai_training_grant_that_expires_owes_a_deletion_due_when_it_ended(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    trained = await granted(desk, parties, ai_training=True, days=2)
    plain = await granted(desk, parties, ai_training=False, days=2)
    clock.advance(timedelta(days=1))
    assert await workflow.expire_due_grants(desk) == 0
    async with desk.db.read() as session:
        assert await session.get(Deletion, trained) is None  # nothing owed while it runs
    clock.advance(timedelta(days=2))  # the sweep runs a day after both ended

    assert await workflow.expire_due_grants(desk) == 2

    trained_body = (await api.get(f"/v1/grants/{trained}", headers=auth(parties))).json()
    plain_body = (await api.get(f"/v1/grants/{plain}", headers=auth(parties))).json()
    assert plain_body["status"] == "expired" and plain_body["deletion"] is None
    assert trained_body["status"] == "expired"
    assert trained_body["deletion"]["status"] == "due"
    assert trained_body["deletion"]["cause"] == "expired"
    assert trained_body["deletion"]["due_at"] == trained_body["ends_at"]
    # The requests list shows the same grant the same way.
    listed = (await api.get("/v1/requests", headers=auth(parties))).json()["requests"]
    assert {r["grant"]["id"]: r["grant"]["deletion"] for r in listed} == {
        trained: trained_body["deletion"],
        plain: None,
    }
    assert await workflow.expire_due_grants(desk) == 0  # expired once, owed once


async def test_a_running_grant_owes_nothing_and_a_confirmation_is_refused_with_a_clear_code(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    grant_id = await granted(desk, parties, ai_training=True)
    clock.advance(timedelta(days=1))
    assert (await api.get(f"/v1/grants/{grant_id}", headers=auth(parties))).json()["deletion"] is None

    answer = await confirm(api, parties, grant_id, deleted_at=clock.now().isoformat())

    assert answer.status_code == 409
    assert answer.json()["code"] == "deletion_not_owed"
    receipt = await api.get(f"/v1/grants/{grant_id}/deletion/receipt", headers=auth(parties))
    assert receipt.status_code == 404


# ---------------------------------------------------------------- confirmed


async def test_a_confirmation_is_signed_told_to_artist_and_agency_and_given_once(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    grant_id = await revoked(desk, parties, clock, ai_training=True)
    clock.advance(timedelta(days=2))
    deleted_at = clock.now() - timedelta(hours=3)

    answer = await confirm(api, parties, grant_id, deleted_at=deleted_at.isoformat())

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "confirmed" and body["statement"] == STATEMENT
    assert datetime.fromisoformat(body["deleted_at"]) == deleted_at
    assert datetime.fromisoformat(body["confirmed_at"]) == clock.now()
    shown = (await api.get(f"/v1/grants/{grant_id}", headers=auth(parties))).json()["deletion"]
    assert shown["status"] == "confirmed" and shown["confirmed_at"] == body["confirmed_at"]

    receipt = (await api.get(body["receipt_url"], headers=auth(parties))).json()
    keys = parse_keys_document((await api.get("/.well-known/likeness-keys.json")).json())
    verify_receipt(receipt, keys)
    assert receipt["type"] == "likeness-deletion-receipt"
    assert receipt["grant"]["id"] == grant_id
    assert receipt["deletion"]["statement"] == STATEMENT
    for forged in (
        receipt | {"deletion": receipt["deletion"] | {"statement": STATEMENT + "!"}},
        receipt | {"type": "likeness-consent-receipt"},
    ):
        with pytest.raises(ReceiptError):
            verify_receipt(forged, keys)

    notices = await grant_notices(desk, grant_id)
    assert [n.kind for n in notices if n.recipient_kind == "artist" and n.kind == "deletion_confirmed"] == [
        "deletion_confirmed"
    ]
    assert len(events(notices, "deletion.confirmed", channel="slack")) == 1
    assert len(events(notices, "deletion.confirmed")) == 1  # the creator's own webhook
    assert (await audit_actions(desk, grant_id)).count("deletion.confirmed") == 1

    again = await confirm(api, parties, grant_id, deleted_at=deleted_at.isoformat())
    assert again.status_code == 409
    assert again.json()["code"] == "deletion_already_confirmed"
    assert len(await grant_notices(desk, grant_id)) == len(notices)


async def test_an_idempotency_key_replays_the_confirmation(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    grant_id = await revoked(desk, parties, clock)
    body = {"statement": STATEMENT, "deleted_at": clock.now().isoformat()}
    headers = auth(parties) | {"Idempotency-Key": "del-1"}
    first = await api.post(f"/v1/grants/{grant_id}/deletion", json=body, headers=headers)
    again = await api.post(f"/v1/grants/{grant_id}/deletion", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()


async def test_another_creators_grant_is_not_found(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    grant_id = await revoked(desk, parties, clock)
    other = await workflow.add_creator(desk, name="Other Studio")
    headers = {"Authorization": f"Bearer {other.api_key}"}
    body = {"statement": STATEMENT, "deleted_at": clock.now().isoformat()}

    posted = await api.post(f"/v1/grants/{grant_id}/deletion", json=body, headers=headers)

    assert posted.status_code == 404
    assert (await api.get(f"/v1/grants/{grant_id}/deletion/receipt", headers=headers)).status_code == 404
    async with desk.db.read() as session:
        deletion = await session.get(Deletion, grant_id)
    assert deletion is not None and deletion.confirmed_at is None


async def test_two_confirmations_at_once_give_exactly_one(
    desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    grant_id = await revoked(desk, parties, clock)
    attempts = [
        workflow.confirm_deletion(
            desk,
            creator_id=parties.creator_id,
            grant_id=grant_id,
            statement=f"{STATEMENT} ({n})",
            deleted_at=clock.now(),
        )
        for n in range(4)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    assert sum(isinstance(r, workflow.DeletionConfirmed) for r in results) == 1
    assert sum(isinstance(r, workflow.DeletionAlreadyConfirmed) for r in results) == 3
    assert (await audit_actions(desk, grant_id)).count("deletion.confirmed") == 1


_BAD_BODIES = [
    ("statement", {"deleted_at": "T"}),
    ("statement", {"statement": "too short", "deleted_at": "T"}),
    ("statement", {"statement": "x" * 4001, "deleted_at": "T"}),
    ("statement", {"statement": "          \n   ", "deleted_at": "T"}),
    ("statement", {"statement": STATEMENT + "\x00", "deleted_at": "T"}),
    ("statement", {"statement": "\x1b[31m" + STATEMENT, "deleted_at": "T"}),
    ("statement", {"statement": "\u202e" + STATEMENT, "deleted_at": "T"}),
    ("statement", {"statement": STATEMENT + "\u2066", "deleted_at": "T"}),
    ("statement", {"statement": 12345678901, "deleted_at": "T"}),
    ("deleted_at", {"statement": STATEMENT}),
    ("deleted_at", {"statement": STATEMENT, "deleted_at": "yesterday"}),
    ("deleted_at", {"statement": STATEMENT, "deleted_at": "2026-11-26T09:00:00"}),
    ("deleted_at", {"statement": STATEMENT, "deleted_at": "0001-01-01T00:00:00Z"}),
    ("deleted_at", {"statement": STATEMENT, "deleted_at": "FUTURE"}),
    ("deleted_at", {"statement": STATEMENT, "deleted_at": "BEFORE"}),
    ("extra", {"statement": STATEMENT, "deleted_at": "T", "extra": 1}),
]


async def test_bad_input_on_every_field_is_a_422_that_stores_and_audits_nothing(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    grant_id = await revoked(desk, parties, clock)
    clock.advance(timedelta(days=1))
    moments = {
        "T": clock.now().isoformat(),
        "FUTURE": (clock.now() + timedelta(hours=1)).isoformat(),
        "BEFORE": (clock.now() - timedelta(days=10)).isoformat(),  # before the grant began
    }
    before = await row_counts(desk)
    for field, body in _BAD_BODIES:
        body = {k: moments.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
        answer = await api.post(f"/v1/grants/{grant_id}/deletion", json=body, headers=auth(parties))
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["code"] == "invalid_input"
        assert field in json.dumps(answer.json()["detail"]), (field, answer.json())
    not_json = await api.post(
        f"/v1/grants/{grant_id}/deletion",
        content=b"{statement",
        headers=auth(parties) | {"content-type": "application/json"},
    )
    assert not_json.status_code == 400
    assert await row_counts(desk) == before
    async with desk.db.read() as session:
        deletion = await session.get(Deletion, grant_id)
    assert deletion is not None and deletion.confirmed_at is None and deletion.statement is None


async def test_a_statement_keeps_its_line_breaks(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    grant_id = await revoked(desk, parties, clock)
    text = "Deleted:\r\n- training set\n\t- model weights"
    answer = await confirm(api, parties, grant_id, statement=text, deleted_at=clock.now().isoformat())
    assert answer.status_code == 201, answer.text
    assert answer.json()["statement"] == "Deleted:\n- training set\n\t- model weights"


# ---------------------------------------------------------------- reminded and escalated


async def test_the_creator_is_reminded_at_3d_and_7d_once_each_and_the_agency_told_after_14d(
    desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    grant_id = await revoked(desk, parties, clock)
    due_at = clock.now()

    def at(offset: timedelta) -> None:
        clock.advance(due_at + offset - clock.now())

    at(timedelta(days=3) - timedelta(seconds=1))
    assert await workflow.send_deletion_reminders(desk) == 0
    at(timedelta(days=3))
    assert await workflow.send_deletion_reminders(desk) == 1
    assert await workflow.send_deletion_reminders(desk) == 0
    at(timedelta(days=7) - timedelta(seconds=1))
    assert await workflow.send_deletion_reminders(desk) == 0
    at(timedelta(days=7))
    assert await workflow.send_deletion_reminders(desk) == 1
    at(timedelta(days=14) - timedelta(seconds=1))
    assert await workflow.run_sweeps(desk) == dict.fromkeys(
        [
            "lapsed",
            "decision_reminders",
            "activated",
            "expired",
            "grant_reminders",
            "deletion_reminders",
            "deletion_escalations",
            "output_reminders",
            "outputs_rejected",
        ],
        0,
    )
    at(timedelta(days=14))
    assert (await workflow.run_sweeps(desk))["deletion_escalations"] == 1
    at(timedelta(days=30))
    assert (await workflow.run_sweeps(desk))["deletion_escalations"] == 0

    notices = await grant_notices(desk, grant_id)
    reminders = events(notices, "deletion.reminder")
    assert [r["index"] for r in reminders] == [0, 1]
    assert reminders[0]["due_at"] == due_at.isoformat().replace("+00:00", "Z")
    assert len(events(notices, "deletion.escalation", channel="slack")) == 1
    actions = await audit_actions(desk, grant_id)
    assert actions.count("reminder.deletion") == 2 and actions.count("deletion.escalated") == 1
    async with desk.db.read() as session:
        deletion = await session.get(Deletion, grant_id)
    assert deletion is not None and deletion.reminders_sent == 2 and deletion.escalated_at is not None


async def test_after_downtime_only_the_latest_reminder_is_sent_and_a_confirmed_deletion_is_left_alone(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    late = await revoked(desk, parties, clock)
    done = await revoked(desk, parties, clock)
    assert (await confirm(api, parties, done, deleted_at=clock.now().isoformat())).status_code == 201
    clock.advance(timedelta(days=20))  # every moment passed while the service was down

    assert await workflow.send_deletion_reminders(desk) == 1
    assert await workflow.escalate_overdue_deletions(desk) == 1

    assert [r["index"] for r in events(await grant_notices(desk, late), "deletion.reminder")] == [1]
    assert not events(await grant_notices(desk, done), "deletion.reminder")
    assert not events(await grant_notices(desk, done), "deletion.escalation", channel="slack")


async def test_a_confirmation_after_escalation_still_counts_and_stops_nothing_else(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    grant_id = await revoked(desk, parties, clock)
    clock.advance(timedelta(days=15))
    await workflow.run_sweeps(desk)
    answer = await confirm(api, parties, grant_id, deleted_at=clock.now().isoformat())
    assert answer.status_code == 201
    clock.advance(timedelta(days=15))
    assert (await workflow.run_sweeps(desk))["deletion_reminders"] == 0


# ---------------------------------------------------------------- settings


def test_deletion_settings_are_read_like_the_other_reminders(tmp_path: Path) -> None:
    from bot.app import build_desk

    settings = load_settings(
        deletion_reminders="7d, 1d,3d",
        deletion_window="2w",
        data_dir=tmp_path,
        database_url="sqlite+aiosqlite:///x",
    )
    desk = build_desk(settings)
    assert desk.rules.deletion_reminders == (timedelta(days=1), timedelta(days=3), timedelta(days=7))
    assert desk.rules.deletion_window == timedelta(days=14)
    defaults = load_settings(data_dir=tmp_path)
    assert defaults.deletion_reminders == [timedelta(days=7), timedelta(days=3)]
    assert defaults.deletion_window == timedelta(days=14)
    for name, value in (("deletion_reminders", "3 days"), ("deletion_window", "0d")):
        with pytest.raises(ConfigError, match=name.upper()):
            load_settings(**{name: value})


# ---------------------------------------------------------------- what people read


def test_the_artist_reads_the_confirmation_in_their_language() -> None:
    from bot.models import Language
    from bot.render.telegram_deletion import artist_confirmed

    when = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    english = artist_confirmed(Language.en, "UTC", "Moon <Drama>", "Aurora", when)
    chinese = artist_confirmed(Language.zh_hans, "Asia/Shanghai", "Moon <Drama>", "Aurora", when)
    assert "Aurora confirmed deleting" in english and "Moon &lt;Drama&gt;" in english
    assert "已确认删除" in chinese and "Moon &lt;Drama&gt;" in chinese and "签名" in chinese


def test_a_studio_on_telegram_reads_when_it_owes_and_is_reminded() -> None:
    from bot.models import Language
    from bot.render.telegram import creator_status

    payload = {"event": "deletion.reminder", "due_at": "2026-12-01T08:30:00Z", "request_id": "req_1"}
    reminder = creator_status(Language.en, "UTC", "Spot", payload)
    due = creator_status(Language.zh_hans, "UTC", "Spot", payload | {"event": "deletion.due"})
    assert "<b>Reminder:</b> confirm the deletion" in reminder and "agency is told" in reminder
    assert "<b>删除</b>" in due


def test_the_agency_thread_says_who_owes_what() -> None:
    from types import SimpleNamespace

    from bot.render.slack import thread_reply

    view: Any = SimpleNamespace(
        artist=SimpleNamespace(name="Li <Wei>"), creator=SimpleNamespace(name="Dream & Co"), agency=None
    )
    overdue = thread_reply(view, {"event": "deletion.escalation", "due_at": "2026-12-01T08:30:00Z"})
    done = thread_reply(view, {"event": "deletion.confirmed", "deleted_at": "2026-12-02T08:30:00Z"})
    assert "Dream &amp; Co has not confirmed deleting Li &lt;Wei&gt;" in overdue and "<!date^" in overdue
    assert "confirmed the deletion" in done

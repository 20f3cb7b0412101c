"""Properties: terms validation and canonical hashing (hypothesis), and a stateful lifecycle."""

from __future__ import annotations

import asyncio
import functools
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from pydantic import ValidationError
from sqlalchemy import func, select

from bot import workflow
from bot.clock import FrozenClock
from bot.models import Likeness, Media, Outcome, Policy, Sensitive, Terms, TermsIn, UsageIn, UsageKind
from bot.receipts import load_or_create_signer
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, make_terms
from storage.audit import verify_chain
from storage.database import Database, upgrade_database
from storage.tables import Decision, Grant, Request

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
subsets = lambda values: st.lists(st.sampled_from(list(values)), min_size=1, unique=True)  # noqa: E731

# Text a person reads holds no control or text-direction characters (bot/clean_text.py); titles are one line.
readable = st.characters(exclude_categories=("Cc", "Cs", "Cf"))

valid_terms = st.fixed_dictionaries(
    {
        "artist_id": st.just("art_0000000000000001"),
        "project_title": st.text(readable, min_size=1, max_size=50).filter(lambda s: s.strip()),
        "use_description": st.text(readable, min_size=20, max_size=200).filter(
            lambda s: len(s.strip()) >= 20
        ),
        "media": subsets(Media),
        "likeness": subsets(Likeness),
        "territory": st.one_of(
            st.just(["worldwide"]),
            st.lists(st.sampled_from(["CN", "US", "DE", "SG", "JP"]), min_size=1, unique=True),
        ),
        "starts_in_minutes": st.integers(min_value=0, max_value=60 * 24 * 30),
        "length_minutes": st.integers(min_value=1, max_value=60 * 24 * 300),
        "zone": offsets,
        "ai_training": st.booleans(),
        "sensitive": st.lists(st.sampled_from(list(Sensitive)), unique=True),
        "sublicensing": st.booleans(),
        "amount": st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False, allow_infinity=False),
    }
)


def _terms_json(draw: dict[str, Any]) -> dict[str, Any]:
    starts = NOW + timedelta(minutes=draw["starts_in_minutes"])
    ends = starts + timedelta(minutes=draw["length_minutes"])
    zone = draw["zone"]
    return {
        "artist_id": draw["artist_id"],
        "project_title": draw["project_title"],
        "use_description": draw["use_description"],
        "media": [m.value for m in draw["media"]],
        "likeness": [x.value for x in draw["likeness"]],
        "territory": draw["territory"],
        "starts_at": starts.astimezone(zone).isoformat(),
        "ends_at": ends.astimezone(zone).isoformat(),
        "ai_training": draw["ai_training"],
        "sensitive": [s.value for s in draw["sensitive"]],
        "sublicensing": draw["sublicensing"],
        "compensation": {"amount": str(draw["amount"]), "currency": "cny"},
    }


def _hash(data: dict[str, Any]) -> str:
    parsed = TermsIn.model_validate(data)
    return Terms.from_input(parsed, creator_id="crt_1", decision_due_at=NOW + timedelta(hours=1)).terms_hash


@given(valid_terms)
def test_valid_terms_always_validate_and_hash_the_same_however_they_are_written(draw: dict[str, Any]) -> None:
    data = _terms_json(draw)
    digest = _hash(data)
    reordered = data | {
        "media": list(reversed(data["media"])),
        "likeness": list(reversed(data["likeness"])),
        "territory": [t.lower() if t != "worldwide" else t for t in reversed(data["territory"])],
        "starts_at": datetime.fromisoformat(data["starts_at"]).astimezone(UTC).isoformat(),
        "ends_at": datetime.fromisoformat(data["ends_at"])
        .astimezone(timezone(timedelta(hours=5)))
        .isoformat(),
        "compensation": {"amount": str(draw["amount"].normalize()), "currency": "CNY"},
    }
    assert _hash(reordered) == digest


@given(
    valid_terms,
    st.sampled_from(["project_title", "use_description", "ai_training", "sublicensing", "starts_at"]),
)
def test_any_change_of_substance_changes_the_hash(draw: dict[str, Any], field: str) -> None:
    data = _terms_json(draw)
    changed = dict(data)
    if field in {"ai_training", "sublicensing"}:
        changed[field] = not data[field]
    elif field == "starts_at":
        changed[field] = (datetime.fromisoformat(data["starts_at"]) - timedelta(seconds=1)).isoformat()
    else:
        changed[field] = data[field] + " (v2)"
    assert _hash(changed) != _hash(data)


@given(
    valid_terms,
    st.sampled_from(["media", "likeness", "sensitive", "territory"]),
    st.text(min_size=1, max_size=12).filter(lambda s: s.strip().upper() not in {"WORLDWIDE"}),
)
def test_unknown_enum_values_and_territories_are_refused_with_the_field_named(
    draw: dict[str, Any], field: str, value: str
) -> None:
    data = _terms_json(draw)
    known = {m.value for m in Media} | {x.value for x in Likeness} | {s.value for s in Sensitive}
    import pycountry

    if value in known or pycountry.countries.get(alpha_2=value.strip().upper()) is not None:
        return
    with pytest.raises(ValidationError) as error:
        TermsIn.model_validate(data | {field: [value]})
    assert error.value.errors()[0]["loc"][0] == field


# ---------------------------------------------------------------- the lifecycle as a state machine


@functools.cache
def migrated_template() -> Path:
    """An SQLite database migrated to head once per test process; each example starts from a copy."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="lifecycle-template-")) / "l.db"
    asyncio.run(upgrade_database(f"sqlite+aiosqlite:///{path}"))
    return path


class Lifecycle(RuleBasedStateMachine):
    """Random sequences of actions on one artist's requests keep the invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.requests: list[str] = []
        self.grants: list[str] = []

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    @initialize(policy=st.sampled_from(list(Policy)))
    def set_up(self, policy: Policy) -> None:
        import tempfile

        self.folder = Path(tempfile.mkdtemp(prefix="lifecycle-"))
        self.clock = FrozenClock(NOW)
        shutil.copyfile(migrated_template(), self.folder / "l.db")
        database = Database(f"sqlite+aiosqlite:///{self.folder / 'l.db'}")
        self.desk = Desk(database, self.clock, load_or_create_signer(self.folder / "k.pem"))
        self.run(database.upgrade())  # at head already: only checks
        self.parties: Parties = self.run(make_parties(self.desk, policy=policy))

    def teardown(self) -> None:
        if hasattr(self, "desk"):
            self.run(self.desk.db.dispose())
        self.loop.close()

    async def _attempt(self, coroutine: Any) -> None:
        try:
            await coroutine
        except workflow.Refused:
            pass

    @rule(ai=st.booleans())
    def submit(self, ai: bool) -> None:
        terms = make_terms(self.desk, self.parties.artist_id, ai_training=ai)
        submitted = self.run(
            workflow.submit_request(self.desk, creator_id=self.parties.creator_id, terms_in=terms)
        )
        self.requests.append(submitted.view.request.id)

    @precondition(lambda self: self.requests)
    @rule(
        data=st.data(),
        who=st.sampled_from(["artist", "agency"]),
        outcome=st.sampled_from(list(Outcome)),
        confirm=st.booleans(),
    )
    def decide(self, data: st.DataObject, who: str, outcome: Outcome, confirm: bool) -> None:
        request_id = data.draw(st.sampled_from(self.requests))
        actor = self.parties.artist() if who == "artist" else self.parties.agency()

        async def go() -> None:
            async with self.desk.db.transaction() as session:
                request = await session.get(Request, request_id)
                assert request is not None
            await self._attempt(
                workflow.decide(
                    self.desk,
                    request_id=request_id,
                    actor=actor,
                    outcome=outcome,
                    terms_hash=request.terms_hash,
                    ai_training_confirmed=confirm,
                )
            )

        self.run(go())

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        request_id = data.draw(st.sampled_from(self.requests))
        self.run(
            self._attempt(
                workflow.withdraw_request(
                    self.desk, creator_id=self.parties.creator_id, request_id=request_id
                )
            )
        )

    @rule(hours=st.integers(min_value=1, max_value=24 * 40))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))
        self.run(workflow.run_sweeps(self.desk))

    @rule(data=st.data())
    def revoke_or_use(self, data: st.DataObject) -> None:
        async def go() -> None:
            async with self.desk.db.transaction() as session:
                grant_ids = list((await session.execute(select(Grant.id))).scalars())
            if not grant_ids:
                return
            grant_id = data.draw(st.sampled_from(sorted(grant_ids)))
            if data.draw(st.booleans()):
                await self._attempt(
                    workflow.revoke_grant(self.desk, grant_id=grant_id, actor=self.parties.artist())
                )
            else:
                await self._attempt(
                    workflow.record_usage(
                        self.desk,
                        creator_id=self.parties.creator_id,
                        grant_id=grant_id,
                        usage=UsageIn(kind=UsageKind.render, likeness=[Likeness.face]),
                    )
                )

        self.run(go())

    @invariant()
    def one_outcome_a_grant_iff_approved_and_an_intact_chain(self) -> None:
        if not hasattr(self, "desk"):
            return

        async def check() -> None:
            async with self.desk.db.transaction() as session:
                for request in (await session.execute(select(Request))).scalars():
                    decisions = list(
                        (
                            await session.execute(select(Decision).where(Decision.request_id == request.id))
                        ).scalars()
                    )
                    kinds = [d.actor_kind for d in decisions]
                    assert len(kinds) == len(set(kinds))  # at most one decision per party
                    assert sum(d.outcome == "deny" for d in decisions) <= 1
                    grants = (
                        await session.execute(
                            select(func.count()).select_from(Grant).where(Grant.request_id == request.id)
                        )
                    ).scalar_one()
                    assert grants == (1 if request.status == "approved" else 0)
                    if request.status == "approved" and request.ai_training:
                        assert any(d.actor_kind == "artist" and d.ai_training_confirmed for d in decisions)
                    if request.status in {"lapsed", "withdrawn", "pending"}:
                        assert all(d.outcome != "deny" for d in decisions)
                assert (await verify_chain(session)).intact

        self.run(check())


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(
    max_examples=12, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

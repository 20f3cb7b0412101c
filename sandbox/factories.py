"""Builders of data for tests and benchmarks: parties, terms and requests, always through the workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot import workflow
from bot.models import (
    USES_NEEDING_LIKENESS,
    USES_NEEDING_PLACE,
    Actor,
    ActorKind,
    ChannelKind,
    Language,
    Likeness,
    Media,
    Outcome,
    Policy,
    RedLines,
    TermsIn,
    UsageIn,
    UsageKind,
)
from bot.workflow import Desk


@dataclass
class Parties:
    """An agency with one Slack member, one artist, and one creator with its API key."""

    agency_id: str
    artist_id: str
    creator_id: str
    api_key: str
    member: str = "U100"

    def artist(self, channel: ChannelKind = ChannelKind.telegram) -> Actor:
        """The artist acting through a channel."""
        return Actor(ActorKind.artist, self.artist_id, channel, display="the artist")

    def agency(self, member: str | None = None) -> Actor:
        """A member of the agency acting in Slack."""
        return Actor(
            ActorKind.agency, self.agency_id, ChannelKind.slack, display="agent", member=member or self.member
        )


async def make_parties(
    desk: Desk,
    *,
    policy: Policy = Policy.artist_only,
    red_lines: RedLines | None = None,
    language: Language = Language.en,
    webhook_url: str | None = None,
    agency_language: Language = Language.en,
) -> Parties:
    """Registers an agency with a Slack channel, an artist on its roster and a creator."""
    agency = await workflow.add_agency(
        desk,
        name="Star Agency",
        slack_channel_id="C100",
        slack_member_ids=["U100"],
        language=agency_language,
    )
    artist = await workflow.add_artist(
        desk, name="Li Wei", agency_id=agency.id, policy=policy, language=language, red_lines=red_lines
    )
    creator = await workflow.add_creator(desk, name="Dream Studio", webhook_url=webhook_url)
    return Parties(agency.id, artist.id, creator.creator.id, creator.api_key)


def terms_at(now: datetime, artist_id: str, **overrides: Any) -> dict[str, Any]:
    """Valid terms as JSON for a request made at `now`: starting the next day, for 90 days."""
    data: dict[str, Any] = {
        "artist_id": artist_id,
        "project_title": "Moonlight Drama S2",
        "use_description": "A digital double of the actor in three dialogue scenes of episode 4.",
        "media": ["series"],
        "likeness": ["face", "voice"],
        "territory": ["CN", "SG"],
        "starts_at": (now + timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=90)).isoformat(),
        "ai_training": False,
        "compensation": {"amount": "5000", "currency": "CNY"},
        "labeling": "Visible 'AI-generated' label and C2PA manifest",
    }
    return data | overrides


def terms_data(desk: Desk, artist_id: str, **overrides: Any) -> dict[str, Any]:
    """Valid terms as JSON, relative to the desk's clock."""
    return terms_at(desk.clock.now(), artist_id, **overrides)


def make_terms(desk: Desk, artist_id: str, **overrides: Any) -> TermsIn:
    """Valid terms as the API would parse them."""
    return TermsIn.model_validate(terms_data(desk, artist_id, **overrides))


async def submit(desk: Desk, parties: Parties, **overrides: Any) -> workflow.Submitted:
    """Submits a request for the parties' artist."""
    return await workflow.submit_request(
        desk, creator_id=parties.creator_id, terms_in=make_terms(desk, parties.artist_id, **overrides)
    )


async def approve(desk: Desk, submitted: workflow.Submitted, actor: Actor) -> workflow.Grant:
    """`actor` approves the submitted request at the terms it was submitted with; the grant it makes."""
    decided = await workflow.decide(
        desk,
        request_id=submitted.view.request.id,
        actor=actor,
        outcome=Outcome.approve,
        terms_hash=submitted.view.request.terms_hash,
    )
    assert decided.view.grant is not None
    return decided.view.grant


def stated_use(kind: UsageKind, count: int = 1, **overrides: Any) -> UsageIn:
    """A use that states what its kind must, inside the factory terms (series, CN, face) unless
    `overrides` say otherwise."""
    data: dict[str, Any] = {"kind": kind, "count": count}
    if kind in USES_NEEDING_PLACE:
        data |= {"media": Media.series, "territory": ["CN"]}
    if kind in USES_NEEDING_LIKENESS:
        data |= {"likeness": [Likeness.face]}
    return UsageIn.model_validate(data | overrides)

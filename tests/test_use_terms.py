"""A reported use against the approved terms: which fields each kind must state, and the judge."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.models import (
    USES_NEEDING_AI_TRAINING,
    WORLDWIDE,
    GrantStatus,
    Likeness,
    Media,
    UsageIn,
    UsageKind,
    ViolationReason,
    judge_use,
)

COUNTRIES = ["CN", "US", "FR", "JP", "HK"]
subsets = lambda values: st.lists(st.sampled_from(list(values)), min_size=1, unique=True)  # noqa: E731
territories = st.one_of(st.just([WORLDWIDE]), subsets(COUNTRIES))

approved_terms = st.fixed_dictionaries(
    {
        "media": subsets([m.value for m in Media]).map(sorted),
        "likeness": subsets([p.value for p in Likeness]).map(sorted),
        "territory": territories.map(sorted),
        "ai_training": st.booleans(),
    }
)


@st.composite
def uses(draw: st.DrawFn) -> UsageIn:
    kind = draw(st.sampled_from(list(UsageKind)))
    body: dict[str, object] = {"kind": kind.value}
    if draw(st.booleans()) or kind in {UsageKind.publish, UsageKind.distribute}:
        body["media"] = draw(st.sampled_from([m.value for m in Media]))
        body["territory"] = draw(territories)
    if draw(st.booleans()) or kind in {UsageKind.render, UsageKind.train, UsageKind.fine_tune}:
        body["likeness"] = draw(subsets([p.value for p in Likeness]))
    return UsageIn.model_validate(body)


def inside_every_term(terms: dict[str, object], use: UsageIn, status: GrantStatus) -> bool:
    """The same rule as the judge, stated from the artist's side, field by field."""
    granted_media = terms["media"]
    granted_parts = terms["likeness"]
    granted_places = terms["territory"]
    assert isinstance(granted_media, list) and isinstance(granted_parts, list)
    assert isinstance(granted_places, list)
    if status is not GrantStatus.active:
        return False
    if use.kind in USES_NEEDING_AI_TRAINING and terms["ai_training"] is not True:
        return False
    if use.media is not None and use.media.value not in granted_media:
        return False
    if use.territory is not None and granted_places != [WORLDWIDE]:
        if use.territory == [WORLDWIDE] or any(code not in granted_places for code in use.territory):
            return False
    return use.likeness is None or all(part.value in granted_parts for part in use.likeness)


@given(terms=approved_terms, use=uses(), status=st.sampled_from(list(GrantStatus)))
def test_a_use_is_accepted_exactly_when_it_lies_inside_every_term_of_an_active_grant(
    terms: dict[str, object], use: UsageIn, status: GrantStatus
) -> None:
    reasons = judge_use(terms, use, status)
    assert (reasons == []) is inside_every_term(terms, use, status)
    assert len(reasons) == len(set(reasons))


TERMS = {"media": ["series"], "likeness": ["face"], "territory": ["CN"], "ai_training": False}


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"kind": "train", "likeness": ["face"]}, GrantStatus.active, ["ai_training_not_granted"]),
        ({"kind": "fine_tune", "likeness": ["face"]}, GrantStatus.active, ["ai_training_not_granted"]),
        (
            {"kind": "publish", "media": "game", "territory": ["CN"]},
            GrantStatus.active,
            ["media_not_granted"],
        ),
        (
            {"kind": "publish", "media": "series", "territory": ["US"]},
            GrantStatus.active,
            ["territory_not_granted"],
        ),
        (
            {"kind": "distribute", "media": "series", "territory": ["worldwide"]},
            GrantStatus.active,
            ["territory_not_granted"],
        ),
        ({"kind": "render", "likeness": ["face", "voice"]}, GrantStatus.active, ["likeness_not_granted"]),
        ({"kind": "render", "likeness": ["face"]}, GrantStatus.expired, ["grant_not_active"]),
        ({"kind": "render", "likeness": ["face"]}, GrantStatus.scheduled, ["grant_not_active"]),
        ({"kind": "render", "likeness": ["face"]}, GrantStatus.paused, ["grant_paused"]),
        (
            {"kind": "publish", "media": "game", "territory": ["US"]},
            GrantStatus.revoked,
            ["grant_not_active", "media_not_granted", "territory_not_granted"],
        ),
        ({"kind": "publish", "media": "series", "territory": ["cn"]}, GrantStatus.active, []),
        ({"kind": "other"}, GrantStatus.active, []),
    ],
)
def test_each_broken_term_is_named(body: dict[str, object], status: GrantStatus, expected: list[str]) -> None:
    reasons = judge_use(TERMS, UsageIn.model_validate(body), status)
    assert [r.value for r in reasons] == expected
    assert all(isinstance(r, ViolationReason) for r in reasons)


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"kind": "publish"}, ["media", "territory"]),
        ({"kind": "distribute", "media": "film"}, ["territory"]),
        ({"kind": "distribute", "territory": ["CN"]}, ["media"]),
        ({"kind": "render"}, ["likeness"]),
        ({"kind": "train"}, ["likeness"]),
        ({"kind": "fine_tune"}, ["likeness"]),
        ({"kind": "other"}, []),
    ],
)
def test_each_kind_must_state_what_it_is(body: dict[str, object], missing: list[str]) -> None:
    assert [e.field for e in UsageIn.model_validate(body).missing_fields()] == missing


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "publish", "media": "hologram", "territory": ["CN"]}, "media"),
        ({"kind": "publish", "media": "film", "territory": ["XX"]}, "territory"),
        ({"kind": "publish", "media": "film", "territory": []}, "territory"),
        ({"kind": "publish", "media": "film", "territory": ["worldwide", "CN"]}, "territory"),
        ({"kind": "render", "likeness": ["soul"]}, "likeness"),
        ({"kind": "render", "likeness": []}, "likeness"),
    ],
)
def test_unknown_values_are_refused_by_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        UsageIn.model_validate(body)
    assert {e["loc"][0] for e in refused.value.errors()} == {field}

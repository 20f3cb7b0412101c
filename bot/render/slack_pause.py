"""What the agency's Slack board says about a pause: the line in each affected request's thread,
and the answer to `/likeness pause | resume`, in the agency's language."""

from __future__ import annotations

from typing import Any

from bot.models import ActorKind
from bot.render.slack_words import Audience, BoardVoice, board_voice
from bot.render.slack_words import escape as escape
from bot.render.words import N_

PAUSE_EVENTS = frozenset({"grant.paused", "grant.resumed", "artist.paused", "artist.resumed"})

_BY = {
    ActorKind.artist.value: N_("the artist"),
    ActorKind.agency.value: N_("the agency"),
    ActorKind.admin.value: N_("an operator"),
}
_RESUMED_AS = {
    "active": N_("the grant is active again"),
    "scheduled": N_("the grant starts as scheduled"),
    "expired": N_("its window ended while paused, so the grant has expired"),
}


def _by(v: BoardVoice, kind: object) -> str:
    return v.label(_BY.get(str(kind), N_("someone")))


def thread_line(artist: str, creator: str, payload: dict[str, Any], v: BoardVoice | None = None) -> str:
    """The thread line of one request for a pause or resume: of its grant, or of the artist (open)."""
    v = v or BoardVoice()
    if payload.get("event") == "artist.paused":  # a request still open: no approval on the artist's behalf
        return ":double_vertical_bar: " + v._(
            "*All of %(artist)s's consents are paused* (by %(by)s); until the pause is lifted only the "
            "artist can approve this request.",
            artist=artist,
            by=_by(v, payload.get("paused_by")),
        )
    if payload.get("event") == "artist.resumed":
        return ":arrow_forward: " + v._(
            "The pause was lifted by %(by)s; this request can be decided as before.",
            by=_by(v, payload.get("resumed_by")),
        )
    if payload.get("event") == "grant.resumed":
        status = v.label(_RESUMED_AS.get(str(payload.get("status")), N_("the grant is back to its window")))
        return ":arrow_forward: " + v._(
            "The pause was lifted by %(by)s: %(status)s. %(creator)s was told.",
            by=_by(v, payload.get("resumed_by")),
            status=status,
            creator=creator,
        )
    line = ":double_vertical_bar: " + v._(
        "*All of %(artist)s's consents are paused* (by %(by)s). %(creator)s was told to stop all use "
        "until the pause is lifted; any use meanwhile is a violation.",
        artist=artist,
        by=_by(v, payload.get("paused_by")),
        creator=creator,
    )
    if payload.get("reason"):
        line += "\n>" + v._("Reason: %(reason)s", reason=str(payload["reason"])[:500])
    return line


def command_answer(
    verb: str, artist_name: str, grants: dict[str, str], agency: Audience | None = None
) -> str:
    """The ephemeral answer once `/likeness pause` or `/likeness resume` is done."""
    v = board_voice(agency)
    if verb == "pause":
        return ":double_vertical_bar: " + v._(
            "Paused %(count)s grant(s) of *%(artist)s*. The creators, the artist and each request's "
            "thread are told. Only your agency (or an operator) can resume this pause: "
            "`/likeness resume <artist id>`.",
            count=len(grants),
            artist=artist_name,
        )
    return ":arrow_forward: " + v._(
        "Resumed %(count)s grant(s) of *%(artist)s*; each is back to what its window allows.",
        count=len(grants),
        artist=artist_name,
    )

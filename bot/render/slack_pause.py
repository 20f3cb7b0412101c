"""What the agency's Slack board says about a pause: the line in each affected request's thread,
and the answer to `/likeness pause | resume`. English, like the rest of the board."""

from __future__ import annotations

from typing import Any

from bot.models import ActorKind

PAUSE_EVENTS = frozenset({"grant.paused", "grant.resumed", "artist.paused", "artist.resumed"})

_BY = {
    ActorKind.artist.value: "the artist",
    ActorKind.agency.value: "the agency",
    ActorKind.admin.value: "an operator",
}
_RESUMED_AS = {
    "active": "the grant is active again",
    "scheduled": "the grant starts as scheduled",
    "expired": "its window ended while paused, so the grant has expired",
}


def escape(text: str) -> str:
    """Slack's three escapes, so a name or reason can never become a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def thread_line(artist: str, creator: str, payload: dict[str, Any]) -> str:
    """The thread line of one request for a pause or resume: of its grant, or of the artist (open)."""
    artist, creator = escape(artist), escape(creator)
    if payload.get("event") == "artist.paused":  # a request still open: no approval on the artist's behalf
        by = _BY.get(str(payload.get("paused_by")), "someone")
        return (
            f":double_vertical_bar: *All of {artist}'s consents are paused* (by {by}); "
            "until the pause is lifted only the artist can approve this request."
        )
    if payload.get("event") == "artist.resumed":
        by = _BY.get(str(payload.get("resumed_by")), "someone")
        return f":arrow_forward: The pause was lifted by {by}; this request can be decided as before."
    if payload.get("event") == "grant.resumed":
        by = _BY.get(str(payload.get("resumed_by")), "someone")
        status = _RESUMED_AS.get(str(payload.get("status")), "the grant is back to its window")
        return f":arrow_forward: The pause was lifted by {by}: {status}. {creator} was told."
    by = _BY.get(str(payload.get("paused_by")), "someone")
    line = (
        f":double_vertical_bar: *All of {artist}'s consents are paused* (by {by}). "
        f"{creator} was told to stop all use until the pause is lifted; any use meanwhile is a violation."
    )
    if payload.get("reason"):
        line += f"\n>Reason: {escape(str(payload['reason']))[:500]}"
    return line


def command_answer(verb: str, artist_name: str, grants: dict[str, str]) -> str:
    """The ephemeral answer once `/likeness pause` or `/likeness resume` is done."""
    name = escape(artist_name)
    if verb == "pause":
        return (
            f":double_vertical_bar: Paused {len(grants)} grant(s) of *{name}*. The creators, the artist and "
            f"each request's thread are told. Only your agency (or an operator) can resume this pause: "
            f"`/likeness resume <artist id>`."
        )
    return (
        f":arrow_forward: Resumed {len(grants)} grant(s) of *{name}*; each is back to what its window allows."
    )

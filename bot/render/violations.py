"""What a violation says to each party: a use that broke the consent, told at once.

Pure rendering from a violation notice's payload (`bot.workflow.usage.violation_data`): the
artist's Telegram message in their language with **Revoke this grant** (the same signed button
`/grants` offers, so the tap goes through the usual confirmation), the agency's thread reply
with **Revoke on behalf** where the policy lets the agency decide, and the line a studio that
linked Telegram reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.models import GrantStatus, Language
from bot.render.buttons import Action, Button, Keyboard
from bot.render.slack_blocks import SlackMessage
from bot.render.slack_words import BoardVoice, Mrkdwn, board_voice, escape
from bot.render.words import (
    LIKENESS,
    MEDIA,
    N_,
    USE_KINDS,
    Html,
    Voice,
    parse_time,
    reason_on_board,
    reason_on_card,
)

if TYPE_CHECKING:
    from storage.queries import RequestView

ACTION_REVOKE = "board_revoke"
# A grant that had already ended when it was used has nothing left to revoke.
_ENDED = frozenset({GrantStatus.revoked.value, GrantStatus.expired.value})


@dataclass(frozen=True)
class Violation:
    """A violation as its notices carry it."""

    id: str
    usage_id: str
    kind: str
    count: int
    media: str | None
    territory: tuple[str, ...]
    likeness: tuple[str, ...]
    reasons: tuple[str, ...]
    grant_status: str
    occurred_at: datetime | None

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Violation:
        """Reads a notice's payload; missing parts are empty, never an error."""
        return cls(
            id=str(payload.get("violation_id") or ""),
            usage_id=str(payload.get("usage_id") or ""),
            kind=str(payload.get("kind") or "other"),
            count=int(payload.get("count") or 1),
            media=str(payload["media"]) if payload.get("media") else None,
            territory=tuple(str(t) for t in payload.get("territory") or ()),
            likeness=tuple(str(p) for p in payload.get("likeness") or ()),
            reasons=tuple(str(r) for r in payload.get("reasons") or ()),
            grant_status=str(payload.get("grant_status") or ""),
            occurred_at=parse_time(payload.get("occurred_at")),
        )

    @property
    def revocable(self) -> bool:
        """Whether revoking still means something (the grant had not ended when it was used)."""
        return self.grant_status not in _ENDED


# ---------------------------------------------------------------- the artist, in Telegram


def _what(v: Voice, violation: Violation) -> Html:
    """'3× publication · medium: game · where: United States · likeness: face and voice'."""
    kind = v.label(USE_KINDS.get(violation.kind, N_("other use")))  # type: ignore[call-overload]
    parts = [v._("%(count)s× %(kind)s", count=v.number(violation.count), kind=kind)]
    if violation.media:
        media = MEDIA.get(violation.media)  # type: ignore[call-overload]
        parts.append(v._("medium: %(media)s", media=v.label(media) if media else violation.media))
    if violation.territory:
        parts.append(v._("where: %(territory)s", territory=v.listing(map(v.territory, violation.territory))))
    if violation.likeness:
        names = (v.label(LIKENESS.get(p, p)) for p in violation.likeness)  # type: ignore[call-overload]
        parts.append(v._("likeness: %(parts)s", parts=v.listing(names)))
    return Html(" · ".join(parts))


def artist_notice(
    language: Language,
    timezone: str,
    *,
    title: str,
    creator_name: str,
    grant_id: str,
    payload: Mapping[str, Any],
) -> tuple[str, Keyboard]:
    """The artist's message about a use outside their consent: what was used, by whom, which
    terms it broke, and a one-tap Revoke this grant (which asks to confirm, as in /grants)."""
    v = Voice(language, timezone)
    violation = Violation.of(payload)
    lines: list[str] = [
        v._("🚨 <b>A use outside your consent</b>"),
        v._(
            "“%(title)s” — %(creator)s reported: %(what)s.",
            title=title,
            creator=creator_name,
            what=_what(v, violation),
        ),
    ]
    if violation.occurred_at is not None:
        lines.append(v._("Used on %(when)s.", when=v.when(violation.occurred_at)))
    lines.append(v._("<b>Terms broken:</b>"))
    lines += [f"• {v.label(reason_on_card(code))}" for code in violation.reasons]
    keyboard: Keyboard = ()
    if violation.revocable and grant_id:
        lines.append(
            v._("Tap <b>Revoke this grant</b> to withdraw this consent; you will be asked to confirm.")
        )
        keyboard = ((Button(v.label(N_("Revoke this grant")), Action.revoke, grant_id),),)
    lines.append(v._("<i>Ref %(request_id)s</i>", request_id=violation.id))
    return "\n".join(lines), keyboard


def creator_line(v: Voice, title: str, payload: Mapping[str, Any]) -> Html:
    """What a studio that linked Telegram reads about its own use outside the consent."""
    violation = Violation.of(payload)
    return v._(
        "🚨 A use of “%(title)s” is outside the consent (%(reasons)s); it was recorded as violation "
        "%(violation)s. Stop that use.",
        title=title,
        reasons=", ".join(violation.reasons),
        violation=violation.id,
    )


# ---------------------------------------------------------------- the agency, in Slack


def _board_what(v: BoardVoice, violation: Violation) -> str:
    english = v.language is Language.en  # English boards name the values as reported
    kind = USE_KINDS.get(violation.kind)  # type: ignore[call-overload]
    parts = [f"{violation.count}× {escape(violation.kind if english or kind is None else v.label(kind))}"]
    if violation.media:
        media = MEDIA.get(violation.media)  # type: ignore[call-overload]
        parts.append(escape(violation.media.replace("_", " ") if english or not media else v.label(media)))
    if violation.territory:
        places = violation.territory if english else [v.voice.territory(t) for t in violation.territory]
        parts.append(escape(v.join(list(places))))
    if violation.likeness:
        names = violation.likeness if english else [v.label(LIKENESS.get(p, p)) for p in violation.likeness]  # type: ignore[call-overload]
        parts.append(escape(v.join(list(names))))
    return " · ".join(parts)


def board_reply(view: RequestView, payload: Mapping[str, Any]) -> SlackMessage:
    """The violation in the request's thread, in the agency's language: what, which terms, and
    Revoke on behalf where the artist's policy lets the agency decide (the workflow checks it
    again on the click)."""
    v = board_voice(view.agency)
    violation = Violation.of(payload)
    creator = view.creator.name
    what = Mrkdwn(_board_what(v, violation))
    reasons = [v.label(reason_on_board(code)) for code in violation.reasons]
    text = ":rotating_light: " + v._(
        "*Violation:* %(creator)s reported %(what)s: %(reasons)s.",
        creator=creator,
        what=what,
        reasons="; ".join(reasons),
    )
    if violation.occurred_at:
        said = v._(
            "*Violation:* %(creator)s reported %(what)s on %(when)s.",
            creator=creator,
            what=what,
            when=v.date(violation.occurred_at),
        )
    else:
        said = v._("*Violation:* %(creator)s reported %(what)s.", creator=creator, what=what)
    broken = "\n".join(f"• {escape(reason)}" for reason in reasons)
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": ":rotating_light: " + said + "\n" + v._("*Terms broken:*") + "\n" + broken,
            },
        }
    ]
    if payload.get("agency_may_revoke") and violation.revocable and view.grant is not None:
        confirm = v._(
            "This withdraws *%(artist)s*'s consent at once, recorded in your name; %(creator)s must stop "
            "and delete.",
            artist=view.artist.name,
            creator=creator,
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"violation:{violation.id}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ACTION_REVOKE,
                        "text": {
                            "type": "plain_text",
                            "text": v.label(N_("Revoke on behalf")),
                            "emoji": True,
                        },
                        "value": view.grant.id,
                        "style": "danger",
                        "confirm": {
                            "title": {"type": "plain_text", "text": v.label(N_("Revoke on behalf?"))},
                            "text": {"type": "mrkdwn", "text": confirm},
                            "confirm": {"type": "plain_text", "text": v.label(N_("Revoke"))},
                            "deny": {"type": "plain_text", "text": v.label(N_("Cancel"))},
                        },
                    }
                ],
            }
        )
    reference = v._(
        "Violation `%(violation)s` · use `%(usage)s`", violation=violation.id, usage=violation.usage_id
    )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": reference}]})
    return SlackMessage(text=text, blocks=blocks)

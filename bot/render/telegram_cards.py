"""The request card in Telegram: every term, where the request stands, and the artist's buttons.

Pure: a `Card` in, Telegram HTML and abstract buttons out, in the artist's language; deciding
(approve, confirm AI training, deny with a reason) happens on these buttons.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.models import (
    OPEN_STATUSES,
    ActorKind,
    Compensation,
    GrantStatus,
    Language,
    Outcome,
    RequestStatus,
    Terms,
)
from bot.render.buttons import Action, Button, Keyboard, seen_subject
from bot.render.telegram import MAX_TEXT, Rendered
from bot.render.telegram_prompts import reply_prompt
from bot.render.words import (
    LIKENESS,
    MEDIA,
    N_,
    SENSITIVE,
    Html,
    Voice,
    actor_on_card,
    channel_on_card,
    esc,
    language_of,
    plain_length,
)

if TYPE_CHECKING:
    # The rows a card is drawn from; only their attributes are read, so the type stays here.
    from storage.queries import RequestView

# Reasons offered when denying: code → (button label, the reason recorded for studio and agency).
DENY_REASONS: dict[str, tuple[str, str]] = {
    "terms": (N_("I don't agree with these terms"), "The artist does not agree with these terms"),
    "pay": (N_("The compensation is too low"), "The compensation is too low"),
    "use": (N_("I don't want my likeness used this way"), "The artist does not want this use"),
    "ai": (N_("No AI training of my likeness"), "The artist does not allow AI training"),
}
# The deny prompt carries the request id in this language-independent form, so that the reply can
# be tied to its request without keeping any state (a ForceReply survives restarts).
DENY_PROMPT_MARK = re.compile(r"decline:(req_[0-9a-f]{16})")


@dataclass(frozen=True)
class DecisionLine:
    """One recorded decision, as the card shows it."""

    outcome: str
    actor_kind: str
    name: str
    channel: str
    at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class Card:
    """Everything a request card shows: the terms, who asks, where the request stands."""

    request_id: str
    terms: Terms
    creator_name: str
    status: RequestStatus
    decisions: tuple[DecisionLine, ...]
    updated_at: datetime
    language: Language
    timezone: str
    reason: str | None = None
    nudge: bool = False
    # The grant this approval made is paused: the artist approved while every consent was paused.
    grant_paused: bool = False

    @property
    def artist_has_decided(self) -> bool:
        """Whether the artist's own decision is already recorded (e.g. awaiting the co-signature)."""
        return any(d.actor_kind == ActorKind.artist.value for d in self.decisions)

    @property
    def open_for_artist(self) -> bool:
        """Whether the card still asks the artist to decide (and so shows buttons)."""
        return self.status in OPEN_STATUSES and not self.artist_has_decided


def card_from_view(view: RequestView, *, timezone: str, nudge: bool = False) -> Card:
    """The request card's content for the request's artist."""
    request = view.request
    return Card(
        request_id=request.id,
        terms=Terms.model_validate(request.terms),
        creator_name=view.creator.name,
        status=RequestStatus(request.status),
        decisions=tuple(
            DecisionLine(
                outcome=d.outcome,
                actor_kind=d.actor_kind,
                name=d.actor_display,
                channel=d.channel,
                at=d.created_at,
                reason=d.reason,
            )
            for d in view.decisions
        ),
        updated_at=request.updated_at,
        language=language_of(view.artist.language),
        timezone=view.artist.timezone or timezone,
        reason=request.reason,
        nudge=nudge,
        grant_paused=view.grant is not None and view.grant.status == GrantStatus.paused.value,
    )


def card(c: Card) -> Rendered:
    """The request card: every term, the AI-training warning, the deadline or the outcome."""
    v = Voice(c.language, c.timezone)
    terms = c.terms
    head: list[str] = []
    if c.nudge and c.open_for_artist:
        head.append(v._("🔔 <b>Your agency asks you to look at this request.</b>"))
    if terms.sensitive:
        flags = v.listing(v.label(SENSITIVE[s].card) for s in terms.sensitive)
        head.append(v._("<b>⚠️ Sensitive: %(flags)s</b>", flags=flags))
    head.append(v._("📝 <b>Likeness request: %(title)s</b>", title=terms.project_title))
    head.append(v._("From: %(creator)s", creator=c.creator_name))

    # Telegram takes 4096 characters; the API's limits allow a little more. Only what cannot fit is
    # shortened, least important first: reference links, then the labelling text, then (never in
    # practice) the description. Every term stays whole in the request record and the receipt.
    description, labeling = terms.use_description, terms.labeling
    references = [str(url) for url in terms.reference_urls]
    while True:
        body = _card_body(v, c, description, labeling, references)
        text = "\n".join([*head, "", *body])
        excess = plain_length(text) - MAX_TEXT
        if excess <= 0:
            break
        if references:
            references.pop()
        elif labeling and len(labeling) > 200:
            labeling = _shorten(labeling, len(labeling) - excess)
        elif len(description) > 200:
            description = _shorten(description, len(description) - excess)
        else:
            break  # cannot happen within the API's limits
    return Rendered(text, card_keyboard(c))


def _shorten(text: str, length: int) -> str:
    return text[: max(200, length - 1)].rstrip() + "…"


def _card_body(
    v: Voice, c: Card, description: str, labeling: str | None, references: Sequence[str]
) -> list[str]:
    terms = c.terms
    lines = [v._("<b>What will be made</b>"), esc(description), ""]
    lines.append(v._("<b>Media:</b> %(media)s", media=v.listing(v.label(MEDIA[m]) for m in terms.media)))
    likeness = v.listing(v.label(LIKENESS[x]) for x in terms.likeness)
    lines.append(v._("<b>Likeness:</b> %(likeness)s", likeness=likeness))
    territory = v.listing(v.territory(t) for t in terms.territory)
    lines.append(v._("<b>Territory:</b> %(territory)s", territory=territory))
    lines.append(
        v._("<b>Window:</b> %(start)s – %(end)s", start=v.day(terms.starts_at), end=v.day(terms.ends_at))
    )
    if isinstance(terms.compensation, Compensation):
        lines.append(v._("<b>Compensation:</b> %(amount)s", amount=v.money(terms.compensation)))
    elif terms.compensation == "none":
        lines.append(v._("<b>Compensation:</b> none (unpaid)"))
    else:
        lines.append(v._("<b>Compensation:</b> not stated"))
    if terms.sublicensing:
        lines.append(v._("<b>Sublicensing:</b> <b>allowed</b>: the studio may pass your likeness on"))
    else:
        lines.append(v._("<b>Sublicensing:</b> not allowed"))
    if terms.preview_required:
        lines.append(v._("<b>Outputs:</b> each needs your release before it is published"))
    if labeling:
        lines.append(v._("<b>AI labelling:</b> %(labeling)s", labeling=labeling))
    else:
        lines.append(v._("<b>AI labelling:</b> not stated"))
    if references:
        links = ", ".join(f'<a href="{esc(url)}">{index}</a>' for index, url in enumerate(references, 1))
        lines.append(v._("<b>References:</b> %(links)s", links=Html(links)))
    lines.append("")
    if terms.ai_training:
        lines.append(
            v._(
                "🤖 <b>AI training requested.</b> If you approve, a model will learn your likeness "
                "and can make new images or sound of you by itself, beyond these scenes. You can "
                "revoke later; the studio must then delete the model and its training data."
            )
        )
    else:
        lines.append(v._("🤖 AI training: not requested; no model may learn your likeness."))
    lines.append("")
    lines.extend(_card_state(v, c))
    lines.append(v._("<i>Ref %(request_id)s</i>", request_id=c.request_id))
    return lines


def _who(v: Voice, decision: DecisionLine) -> str:
    kind = v.label(actor_on_card(decision.actor_kind, decision.actor_kind))
    name = decision.name or kind
    return f"{name} ({kind}, {channel_on_card(decision.channel)})"


def _card_state(v: Voice, c: Card) -> list[Html]:
    """The closing lines: the deadline while open, otherwise the outcome, who and when."""
    decisive = [d for d in c.decisions if d.outcome == Outcome.deny.value] or list(c.decisions)
    last = decisive[-1] if decisive else None
    status = c.status
    if status is RequestStatus.approved and last is not None:
        # With a co-signature both approvals are shown, in the order they were given.
        approvals = [
            v._("✅ <b>Approved</b> by %(who)s · %(when)s", who=_who(v, d), when=v.when(d.at))
            for d in c.decisions
            if d.outcome == Outcome.approve.value
        ]
        if c.grant_paused:
            approvals.append(v._("⏸ This consent is <b>paused</b> with all your consents until you /resume."))
        return approvals
    if status is RequestStatus.denied:
        if last is None:
            lines = [v._("❌ <b>Declined</b> · %(when)s", when=v.when(c.updated_at))]
        else:
            lines = [v._("❌ <b>Declined</b> by %(who)s · %(when)s", who=_who(v, last), when=v.when(last.at))]
        reason = (last.reason if last else None) or c.reason
        if reason:
            lines.append(v._("Reason: %(reason)s", reason=reason))
        return lines
    if status is RequestStatus.lapsed:
        return [
            v._(
                "⌛ <b>Lapsed</b>: no decision before the deadline (%(when)s)",
                when=v.when(c.terms.decision_due_at),
            )
        ]
    if status is RequestStatus.withdrawn:
        return [v._("↩️ <b>Withdrawn by the studio</b> · %(when)s", when=v.when(c.updated_at))]
    lines = []
    if status is RequestStatus.awaiting_cosign and last is not None:
        if c.artist_has_decided:
            return [
                v._(
                    "🕓 <b>You approved</b> · %(when)s. Waiting for your agency's co-signature.",
                    when=v.when(last.at),
                )
            ]
        lines.append(v._("🕓 Your agency approved (%(who)s); your approval completes it.", who=_who(v, last)))
    lines.append(v._("⏳ <b>Decide by:</b> %(when)s", when=v.when(c.terms.decision_due_at)))
    return lines


def card_keyboard(c: Card) -> Keyboard:
    """Approve and Deny while the artist still has to decide; nothing afterwards."""
    if not c.open_for_artist:
        return ()
    v = Voice(c.language)
    seen = seen_subject(c.request_id, c.terms.terms_hash)  # decisions are checked against these terms
    return (
        (
            Button(v.label(N_("Approve")), Action.approve, seen),
            Button(v.label(N_("Deny")), Action.deny, seen),
        ),
    )


def ai_confirmation_keyboard(language: Language, request_id: str) -> Keyboard:
    """The second, explicit step that approving AI training takes."""
    v = Voice(language)
    return (
        (Button(v.label(N_("Also allow AI training of my likeness")), Action.confirm_ai, request_id),),
        (Button(v.label(N_("Cancel")), Action.back, request_id),),
    )


def deny_reasons_keyboard(language: Language, request_id: str, *, ai_training: bool) -> Keyboard:
    """Reasons to choose from when denying, a way to write one's own, and a way back."""
    v = Voice(language)
    rows = [
        (Button(v.label(label), f"{Action.reason}.{code}", request_id),)
        for code, (label, _recorded) in DENY_REASONS.items()
        if code != "ai" or ai_training
    ]
    rows.append((Button(v.label(N_("Write my own reason…")), Action.own_words, request_id),))
    rows.append((Button(v.label(N_("Back")), Action.back, request_id),))
    return tuple(rows)


def recorded_reason(code: str) -> str | None:
    """The reason stored for a reason button's code, or None for an unknown code."""
    found = DENY_REASONS.get(code)
    return found[1] if found else None


def deny_prompt(language: Language, request_id: str, title: str) -> str:
    """Asks for the artist's own reason, as a message they answer with Telegram's reply."""
    question = Voice(language)._(
        "✍️ Reply to this message with your reason for declining “%(title)s”.", title=title
    )
    return reply_prompt(question, "decline", request_id)

"""What Telegram says about a deletion owed after a grant ends: to the artist when the studio has
confirmed it, to a studio that linked Telegram when it falls due, is reminded or is confirmed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.models import Language
from bot.render.words import Voice, parse_time


def artist_confirmed(
    language: Language, timezone: str, title: str, creator: str, deleted_at: datetime | None
) -> str:
    """Tells the artist the studio confirmed it deleted what it made with their likeness."""
    v = Voice(language, timezone)
    lines = [
        v._(
            "🗑 %(creator)s confirmed deleting what it made with your likeness for “%(title)s” "
            "(training data, models and outputs).",
            creator=creator,
            title=title,
        )
    ]
    if deleted_at is not None:
        lines.append(v._("Deleted on %(when)s.", when=v.when(deleted_at)))
    lines.append(v._("The confirmation is signed and kept as proof."))
    return "\n".join(lines)


def creator_line(v: Voice, event: str, title: str, payload: Mapping[str, Any]) -> str:
    """One status line for a studio about a deletion it owes (`deletion.*` events)."""
    due_at = parse_time(payload.get("due_at"))
    due = v.when(due_at) if due_at else "?"
    if event == "deletion.confirmed":
        return v._("🗑 Your deletion confirmation for “%(title)s” is recorded and signed.", title=title)
    if event == "deletion.reminder":
        return "\n".join(
            [
                v._(
                    "⏰ <b>Reminder:</b> confirm the deletion of everything made with the likeness "
                    "under “%(title)s” (due since %(when)s).",
                    title=title,
                    when=due,
                ),
                v._("Without a confirmation the artist's agency is told."),
            ]
        )
    return v._(
        "🗑 The consent for “%(title)s” has ended: <b>delete</b> training data, models and outputs "
        "made with the likeness, then confirm it (due %(when)s).",
        title=title,
        when=due,
    )

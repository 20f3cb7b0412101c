"""What Telegram tells an artist when an operator changed their record (`likeness artist update`).

Pure like the rest of `bot/render/`: the text only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.models import Language
from bot.render.words import N_, Voice

_FIELDS = {
    "name": N_("name"),
    "agency_id": N_("agency"),
    "policy": N_("who may decide"),
    "red_lines": N_("red lines"),
    "require_preview": N_("release of outputs"),
    "language": N_("language"),
    "timezone": N_("time zone"),
}


def artist_notice(language: Language, payload: Mapping[str, Any]) -> str:
    """Names what changed in the artist's record; decisions from now on follow it."""
    v = Voice(language)
    fields = [v.label(_FIELDS[f]) for f in payload.get("changes", []) if f in _FIELDS]
    return v._(
        "📝 The service's operators updated your record: %(fields)s. Your decisions from now on follow it.",
        fields=v.listing(fields),
    )

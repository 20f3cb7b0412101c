"""Free text that a person will read: no hidden control or direction characters.

A title, a reason or a name is shown to artists, agencies and creators. Control characters can
hide or fake parts of a line (ESC starts terminal sequences, NUL truncates, PostgreSQL refuses it
outright), and bidirectional overrides make text read differently from how it is stored
(U+202E turns "Ad for gpj.exe" around). So such text is refused, never silently altered:
the sender learns which character, and where.

Allowed: every printable character, and in multi-line text the line feed and the tab.
Refused: C0 controls (U+0000–U+001F) but for those two, DEL and C1 controls (U+007F–U+009F),
bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), and lone
surrogates (U+D800–U+DFFF, which no encoding can store).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

_BIDI = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))
_LINE_BREAKS = frozenset({0x0A, 0x09})

# Documented bounds for the free text the service keeps (README, "Security").
MAX_TITLE = 200
MAX_DESCRIPTION = 2000
MAX_LABELING = 1000
MAX_NOTE = 500
MAX_REASON = 1000
MAX_NAME = 200


def _refused(code: int, *, multiline: bool) -> bool:
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return not (multiline and code in _LINE_BREAKS)
    return code in _BIDI or 0xD800 <= code <= 0xDFFF


def hidden_character(text: str, *, multiline: bool = True) -> str | None:
    """Describes the first character the text may not hold, e.g. "U+202E at position 7"; else None."""
    for position, char in enumerate(text, start=1):
        code = ord(char)
        if _refused(code, multiline=multiline):
            kind = "a text-direction control" if code in _BIDI else "a control character"
            if 0xD800 <= code <= 0xDFFF:
                kind = "a lone surrogate"
            elif code in _LINE_BREAKS:
                kind = "a line break or tab"
            return f"{kind} (U+{code:04X}) at position {position}"
    return None


def check_clean_text(value: str) -> str:
    """Refuses text with control or bidirectional characters; line feeds and tabs are fine."""
    found = hidden_character(value, multiline=True)
    if found is not None:
        raise ValueError(f"must not contain {found}; only printable text, line breaks and tabs")
    return value


def check_clean_line(value: str) -> str:
    """Like `check_clean_text`, for one line: line breaks and tabs are refused too."""
    found = hidden_character(value, multiline=False)
    if found is not None:
        raise ValueError(f"must not contain {found}; only printable text on one line")
    return value


CleanText = Annotated[str, AfterValidator(check_clean_text)]
"""Multi-line text a person reads (descriptions, labelling, notes, reasons)."""

CleanLine = Annotated[str, AfterValidator(check_clean_line)]
"""One line a person reads (titles, names)."""


def visible_text(value: str, limit: int = MAX_NAME) -> str:
    """A name given by a platform (a Slack or Telegram display name), without its hidden characters.

    Names chosen on Slack or Telegram are not typed to us, so they are shown cleaned, not refused.
    """
    kept = "".join(c for c in value if not _refused(ord(c), multiline=False))
    return kept.strip()[:limit]

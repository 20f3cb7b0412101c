"""Text as Telegram reads it: the HTML parse mode into plain text and entities, trimming, commands.

Entity offsets and lengths are counted in UTF-16 code units, as in the real API.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from sandbox.telegram.rules import JSONDict


class HtmlParseError(ValueError):
    """Raised for HTML Telegram would refuse with "can't parse entities"."""


TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


def utf16_len(text: str) -> int:
    # Entity offsets and lengths are counted in UTF-16 code units, as in the real API.
    return len(text.encode("utf-16-le")) // 2


class TelegramHtml(HTMLParser):
    """Parses Telegram's HTML dialect into plain text and entities, refusing what Telegram refuses."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self._source = source
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self._parts: list[str] = []
        self._length16 = 0
        self._open: list[tuple[str, JSONDict | None]] = []
        self.entities: list[JSONDict] = []

    def _fail(self, what: str) -> None:
        line, column = self.getpos()
        index = self._line_starts[line - 1] + column
        offset = len(self._source[:index].encode())
        raise HtmlParseError(f"can't parse entities: {what} at byte offset {offset}")

    def handle_data(self, data: str) -> None:
        self._parts.append(data)
        self._length16 += utf16_len(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = TAG_ENTITY.get(tag)
        if kind is None:
            self._fail(f'Unsupported start tag "{tag}"')
            return
        attributes = dict(attrs)
        entity: JSONDict = {"type": kind, "offset": self._length16}
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            self._fail('Tag "span" must have class "tg-spoiler"')
        elif tag == "a":
            entity["url"] = attributes.get("href") or ""
        elif tag == "blockquote" and "expandable" in attributes:
            entity["type"] = "expandable_blockquote"
        elif tag == "tg-emoji":
            if not attributes.get("emoji-id"):
                self._fail('Tag "tg-emoji" must have attribute "emoji-id"')
            entity["custom_emoji_id"] = attributes["emoji-id"]
        elif tag == "code" and self._open and self._open[-1][0] == "pre":
            # <pre><code class="language-x"> is one pre entity with a language, not two entities.
            language = (attributes.get("class") or "").removeprefix("language-")
            pre = self._open[-1][1]
            if pre is not None and language:
                pre["language"] = language
                self._open.append((tag, None))
                return
        self._open.append((tag, entity))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._fail(f'Unsupported start tag "{tag}/"')

    def handle_endtag(self, tag: str) -> None:
        if not self._open:
            self._fail(f'Unexpected end tag "{tag}"')
            return
        open_tag, entity = self._open.pop()
        if open_tag != tag:
            self._fail(f'Unmatched end tag "{tag}", expected "</{open_tag}>"')
        if entity is not None:
            length = self._length16 - entity["offset"]
            if length > 0:
                entity["length"] = length
                self.entities.append(entity)

    def handle_comment(self, data: str) -> None:
        self._fail("Comments are not supported")

    def handle_decl(self, decl: str) -> None:
        self._fail("Declarations are not supported")

    def handle_pi(self, data: str) -> None:
        self._fail("Processing instructions are not supported")

    def unknown_decl(self, data: str) -> None:
        self._fail("Declarations are not supported")

    def run(self) -> tuple[str, list[JSONDict]]:
        self.feed(self._source)
        self.close()
        if self._open:
            raise HtmlParseError(
                f"can't parse entities: Can't find end tag corresponding to start tag \"{self._open[-1][0]}\""
            )
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self._parts), self.entities


def parse_html(source: str) -> tuple[str, list[JSONDict]]:
    """Turns Telegram-HTML into (plain text, entities); raises HtmlParseError on malformed markup."""
    return TelegramHtml(source).run()


def trim(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    # Telegram strips surrounding whitespace from texts and clips the entities to match.
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead16 = utf16_len(text[: len(text) - len(text.lstrip())])
    total16 = utf16_len(stripped)
    clipped = []
    for entity in entities:
        start = max(0, entity["offset"] - lead16)
        end = min(total16, entity["offset"] + entity["length"] - lead16)
        if end > start:
            clipped.append({**entity, "offset": start, "length": end - start})
    return stripped, clipped


COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")


def command_entities(text: str) -> list[JSONDict]:
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())}
        for m in COMMAND.finditer(text)
    ]

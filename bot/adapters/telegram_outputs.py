"""Telegram's side of outputs: the file sent to the artist as a photo, video, audio or document
with its caption and Release / Reject buttons; reminders and outcomes decided by someone else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram import InputFile
from telegram.constants import ParseMode

from bot.delivery import Delivered, Outgoing
from bot.handover_outputs import OutputToShow, output_for_artist
from bot.render import telegram_outputs as texts
from bot.render.buttons import NO_BUTTONS

if TYPE_CHECKING:
    from bot.adapters.telegram import TelegramSender

OUTPUT_NOTICES = frozenset({"output_review", "output_reminder", "output_decided"})
# How each type travels: Telegram shows JPEG and PNG as photos (up to 10 MB, within our limit),
# MP4 as video and MP3 as audio (up to 50 MB); WebP and Ogg go as documents, which it always takes.
_METHOD = {
    "image/jpeg": "photo",
    "image/png": "photo",
    "video/mp4": "video",
    "audio/mpeg": "audio",
}
_EXTENSION = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
}


def method_for(media_type: str) -> str:
    """photo, video, audio or document: how an output of this type is sent."""
    return _METHOD.get(media_type, "document")


async def send_output_notice(sender: TelegramSender, notice: Outgoing) -> Delivered:
    """Sends one output notice to the artist."""
    output_id = str(notice.payload.get("output_id", ""))
    shown = await output_for_artist(
        sender.desk,
        output_id,
        notice.recipient_id,
        sender.default_timezone,
        with_file=notice.kind == "output_review",
    )
    recipient = shown.recipient
    if notice.kind == "output_review":
        if shown.status != "pending":
            return Delivered()  # decided before it could be shown: nothing to ask any more
        return await _send_file(sender, shown)
    if notice.kind == "output_reminder":
        if shown.status != "pending":
            return Delivered()
        text = texts.reminder(
            recipient.language, recipient.timezone, title=shown.title, due_at=shown.release_due_at
        )
    else:
        text = texts.decided_elsewhere(
            recipient.language,
            title=shown.title,
            released=notice.payload.get("status") == "released",
            by=str(notice.payload.get("by", "")),
            ended=bool(notice.payload.get("ended")),
        )
    await sender.bot.send_message(recipient.chat_id, text, parse_mode=ParseMode.HTML)
    return Delivered()


async def _send_file(sender: TelegramSender, shown: OutputToShow) -> Delivered:
    recipient = shown.recipient
    caption = texts.review_caption(
        recipient.language,
        recipient.timezone,
        title=shown.title,
        creator=shown.creator_name,
        description=shown.description,
        due_at=shown.release_due_at,
    )
    markup = sender.signer.markup(texts.review_keyboard(recipient.language, shown.output_id) or NO_BUTTONS)
    name = f"{shown.sha256[:16]}.{_EXTENSION.get(shown.media_type, 'bin')}"
    file = InputFile(shown.data, filename=name)
    common = {"caption": caption, "parse_mode": ParseMode.HTML, "reply_markup": markup}
    method = method_for(shown.media_type)
    if method == "photo":
        message = await sender.bot.send_photo(recipient.chat_id, file, **common)  # type: ignore[arg-type]
    elif method == "video":
        message = await sender.bot.send_video(recipient.chat_id, file, **common)  # type: ignore[arg-type]
    elif method == "audio":
        message = await sender.bot.send_audio(recipient.chat_id, file, **common)  # type: ignore[arg-type]
    else:
        message = await sender.bot.send_document(recipient.chat_id, file, **common)  # type: ignore[arg-type]
    return Delivered(str(message.chat_id), str(message.message_id))

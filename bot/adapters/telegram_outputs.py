"""Telegram's side of outputs: the file sent to the artist as a photo, video, audio or document
with its caption and Release / Reject buttons; reminders and outcomes decided by someone else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram import InputFile
from telegram.constants import ParseMode

from bot.delivery import Delivered, Outgoing
from bot.handed import OutputToShow
from bot.render import telegram_outputs as texts
from bot.render.buttons import NO_BUTTONS

if TYPE_CHECKING:
    from bot.adapters.telegram import TelegramSender

# How each type travels: Telegram shows JPEG and PNG as photos (up to 10 MB, within our limit),
# MP4 as video and MP3 as audio (up to 50 MB); WebP and Ogg go as documents, which it always takes.
_METHOD = {
    "image/jpeg": "photo",
    "image/png": "photo",
    "video/mp4": "video",
    "audio/mpeg": "audio",
}


def method_for(media_type: str) -> str:
    """photo, video, audio or document: how an output of this type is sent."""
    return _METHOD.get(media_type, "document")


async def send_output_notice(sender: TelegramSender, notice: Outgoing, shown: OutputToShow) -> Delivered:
    """Sends one output notice to the artist (one still to decide, for review and reminders)."""
    recipient = shown.recipient
    if notice.kind == "output_review":
        return await _send_file(sender, shown)
    if notice.kind == "output_reminder":
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
    name = shown.filename
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

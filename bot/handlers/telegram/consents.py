"""The artist's consents in Telegram: revoking one (asked through the outbox, then confirmed or kept)."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode

from bot import workflow
from bot.handlers.telegram.common import Context, deps_of, read_tap, refuse
from bot.render import telegram as texts


async def on_revoke(update: Update, context: Context) -> None:
    """Asks the artist to confirm revoking one consent."""
    tapped = await read_tap(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    try:
        await workflow.ask_to_revoke(deps_of(context).desk, grant_id=tap.subject, actor=person.actor)
    except workflow.Refused as why:
        await refuse(query, why, person)
        return
    await query.answer()


async def on_revoke_confirmed(update: Update, context: Context) -> None:
    """Revokes the consent: it ends now; the studio and the agency are told by the workflow."""
    tapped = await read_tap(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    deps = deps_of(context)
    try:
        grant = await workflow.revoke_grant(
            deps.desk, grant_id=tap.subject, actor=person.actor, reason="revoked by the artist in Telegram"
        )
    except workflow.Refused as why:
        await refuse(query, why, person)
        return
    await query.answer()
    summary = await workflow.queries.grant_summary(deps.desk, grant.id)
    title = summary.title if summary else grant.id
    at = grant.revoked_at or deps.desk.clock.now()
    await query.edit_message_text(
        texts.revoked(person.language, person.timezone, title, at), parse_mode=ParseMode.HTML
    )


async def on_revoke_kept(update: Update, context: Context) -> None:
    """Leaves the consent as it is."""
    tapped = await read_tap(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    try:
        summary = await workflow.own_grant(deps_of(context).desk, grant_id=tap.subject, actor=person.actor)
    except workflow.Refused as why:
        await refuse(query, why, person)
        return
    await query.answer()
    await query.edit_message_text(
        texts.revoke_kept(person.language, summary.title), parse_mode=ParseMode.HTML
    )

"""The artist's consents in Telegram: revoking one (asked, then confirmed or kept)."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode

from bot import workflow
from bot.handlers.telegram.common import Context, deps_of, read_tap, refuse
from bot.render import telegram as texts
from bot.workflow import GrantSummary


def grant_line(summary: GrantSummary) -> texts.GrantLine:
    """How a line about the grant reads in a list or a question."""
    grant = summary.grant
    return texts.GrantLine(
        grant_id=grant.id,
        title=summary.title,
        creator_name=summary.creator_name,
        starts_at=grant.starts_at,
        ends_at=grant.ends_at,
        status=grant.status,
        ai_training=summary.ai_training,
    )


async def on_revoke(update: Update, context: Context) -> None:
    """Asks the artist to confirm revoking one consent."""
    tapped = await read_tap(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    deps = deps_of(context)
    try:
        summary = await workflow.check_revoke(deps.desk, grant_id=tap.subject, actor=person.actor)
    except workflow.Refused as why:
        await refuse(query, why, person)
        return
    await query.answer()
    question = texts.revoke_question(person.language, grant_line(summary))
    if update.effective_chat is not None:
        await context.bot.send_message(
            update.effective_chat.id,
            question.text,
            parse_mode=ParseMode.HTML,
            reply_markup=deps.signer.markup(question.keyboard),
        )


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

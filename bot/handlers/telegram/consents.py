"""The artist's consents in Telegram: revoking one (asked, then confirmed or kept)."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode

from bot import workflow
from bot.handlers.telegram.common import Context, Deps, deps_of, read_tap, refuse
from bot.models import GrantStatus
from bot.render import telegram as texts
from bot.workflow import grant_status_at
from storage.tables import Creator, Grant, Request


async def grant_line(deps: Deps, grant_id: str) -> tuple[Grant, texts.GrantLine] | None:
    async with deps.desk.db.read() as session:
        grant = await session.get(Grant, grant_id)
        if grant is None:
            return None
        request = await session.get(Request, grant.request_id)
        creator = await session.get(Creator, grant.creator_id)
    assert request is not None and creator is not None  # foreign keys
    line = texts.GrantLine(
        grant_id=grant.id,
        title=str(request.terms.get("project_title", "")),
        creator_name=creator.name,
        starts_at=grant.starts_at,
        ends_at=grant.ends_at,
        status=grant.status,
        ai_training=request.ai_training,
    )
    return grant, line


async def on_revoke(update: Update, context: Context) -> None:
    """Asks the artist to confirm revoking one consent."""
    tapped = await read_tap(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    deps = deps_of(context)
    found = await grant_line(deps, tap.subject)
    if found is None:
        await refuse(query, workflow.NotFound("no such consent"), person)
        return
    grant, line = found
    if person.artist is None or grant.artist_id != person.artist.id:
        # Not theirs: the workflow refuses and records the attempt in the audit chain.
        try:
            await workflow.revoke_grant(deps.desk, grant_id=grant.id, actor=person.actor)
        except workflow.Refused as why:
            await refuse(query, why, person)
        return
    status = grant_status_at(grant, deps.desk.clock.now())
    if status in {GrantStatus.revoked, GrantStatus.expired}:
        await refuse(query, workflow.NotOpen("closed", status=status.value), person)
        return
    await query.answer()
    question = texts.revoke_question(person.language, line)
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
    found = await grant_line(deps, grant.id)
    title = found[1].title if found else grant.id
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
    found = await grant_line(deps_of(context), tap.subject)
    if found is None or person.artist is None or found[0].artist_id != person.artist.id:
        await refuse(query, workflow.NotAllowed("not this person's consent"), person)
        return
    await query.answer()
    await query.edit_message_text(
        texts.revoke_kept(person.language, found[1].title), parse_mode=ParseMode.HTML
    )

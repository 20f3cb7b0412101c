"""The artist's consents in Telegram: revoking one (asked through the outbox, then confirmed or kept)."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode

from bot import workflow
from bot.handlers.telegram.common import Context, Deps, Person, deps_of, take_tap
from bot.render import telegram as texts
from bot.render.buttons import Tap
from bot.workflow import Grant, GrantSummary


async def _ask(deps: Deps, tap: Tap, person: Person) -> GrantSummary:
    return await workflow.ask_to_revoke(deps.desk, grant_id=tap.subject, actor=person.actor)


async def _revoke(deps: Deps, tap: Tap, person: Person) -> Grant:
    reason = "revoked by the artist in Telegram"
    return await workflow.revoke_grant(deps.desk, grant_id=tap.subject, actor=person.actor, reason=reason)


async def _own(deps: Deps, tap: Tap, person: Person) -> GrantSummary:
    return await workflow.own_grant(deps.desk, grant_id=tap.subject, actor=person.actor)


async def on_revoke(update: Update, context: Context) -> None:
    """Asks the artist to confirm revoking one consent."""
    await take_tap(update, context, _ask)


async def on_revoke_confirmed(update: Update, context: Context) -> None:
    """Revokes the consent: it ends now; the studio and the agency are told by the workflow."""
    taken = await take_tap(update, context, _revoke)
    if taken is None:
        return
    query, _, person, grant = taken
    desk = deps_of(context).desk
    summary = await workflow.queries.grant_summary(desk, grant.id)
    title = summary.title if summary else grant.id
    at = grant.revoked_at or desk.clock.now()
    await query.edit_message_text(
        texts.revoked(person.language, person.timezone, title, at), parse_mode=ParseMode.HTML
    )


async def on_revoke_kept(update: Update, context: Context) -> None:
    """Leaves the consent as it is."""
    taken = await take_tap(update, context, _own)
    if taken is None:
        return
    query, _, person, summary = taken
    await query.edit_message_text(
        texts.revoke_kept(person.language, summary.title), parse_mode=ParseMode.HTML
    )

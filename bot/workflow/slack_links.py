"""An agency joins the one Slack app from its own workspace: the install link, the install it
leads to, and the uninstall that ends it.

- `issue_install_link`: a link bound to one agency, signed, usable once, valid 7 days (audited).
- `install_link` / `begin_install` / `link_of_state`: the checks on the way to Slack and back;
  they write nothing but the OAuth state of a valid click, so a forged, used or expired link
  leaves no row behind.
- `connect_agency_slack`: the install came back; the agency's workspace, board channel and the
  link's use are stored together with the audit event.
- `disconnect_slack_team`: the app was uninstalled or its tokens revoked in a workspace; every
  agency connected there is marked disconnected (audited) and its board stops.

The signature is the caller's (a `Signer`, keyed by SECRETS_KEY): the workflow knows no keys.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update

from bot.models import Actor, ActorKind, ChannelKind, utc_iso
from bot.workflow.desk import Desk, audit, transition
from bot.workflow.errors import NotFound, Refused
from bot.workflow.parties import operator
from storage.tables import Agency, SlackInstallLink

LINK_LIFETIME = timedelta(days=7)
INSTALL_PATH = "/slack/install/"


class Signer(Protocol):
    """Signs and checks the install links (bot/secrets_box.py's `SecretsBox`)."""

    def sign(self, message: str) -> str:
        """The message's signature."""

    def signed(self, message: str, signature: str) -> bool:
        """Whether the signature is this signer's, of this message."""


class LinkInvalid(Refused):
    """An install link that is forged, unknown, used already or expired."""

    code = "install_link_invalid"


@dataclass(frozen=True)
class IssuedLink:
    """A new install link: its token (the link's last path segment) and when it expires."""

    token: str
    agency_id: str
    expires_at: datetime


@dataclass(frozen=True)
class ValidLink:
    """A link that may be used now."""

    id: str
    agency_id: str


@dataclass(frozen=True)
class Connected:
    """What an install stored for its agency."""

    agency_id: str
    team_id: str
    channel_id: str | None


def _signed_text(link_id: str, agency_id: str, expires_at: datetime) -> str:
    return f"slack-install:{link_id}:{agency_id}:{utc_iso(expires_at)}"


async def issue_install_link(desk: Desk, agency_id: str, *, by: str, signer: Signer) -> IssuedLink:
    """A fresh install link for the agency; NotFound when there is no such agency (nothing written)."""
    actor = operator(by)
    async with desk.db.read() as session:
        if await session.get(Agency, agency_id) is None:
            raise NotFound(f"no agency {agency_id}")
    now = desk.clock.now()
    link = SlackInstallLink(
        id=f"sil_{secrets.token_hex(12)}", agency_id=agency_id, created_at=now, expires_at=now + LINK_LIFETIME
    )
    async with transition(desk, actor, "agency.slack_link", "agency", agency_id) as session:
        session.add(link)
        await audit(
            session, desk, actor, "agency.slack_link_issued", "agency", agency_id,
            {"link": link.id, "expires_at": utc_iso(link.expires_at)},
        )  # fmt: skip
    token = f"{link.id}.{signer.sign(_signed_text(link.id, agency_id, link.expires_at))}"
    return IssuedLink(token, agency_id, link.expires_at)


def _usable(desk: Desk, link: SlackInstallLink | None) -> SlackInstallLink:
    if link is None:
        raise LinkInvalid("this install link is not valid", reason="invalid")
    if link.used_at is not None:
        raise LinkInvalid("this install link was used already; ask for a new one", reason="used")
    if link.expires_at <= desk.clock.now():
        raise LinkInvalid("this install link has expired; ask for a new one", reason="expired")
    return link


async def install_link(desk: Desk, token: str, *, signer: Signer) -> ValidLink:
    """The link a token names, when its signature holds and it is unused and unexpired; else LinkInvalid."""
    link_id, _, signature = token.partition(".")
    if not link_id.startswith("sil_") or len(token) > 120 or not signature:
        raise LinkInvalid("this install link is not valid")
    async with desk.db.read() as session:
        link = await session.get(SlackInstallLink, link_id)
    if link is None or not signer.signed(_signed_text(link.id, link.agency_id, link.expires_at), signature):
        raise LinkInvalid("this install link is not valid")
    link = _usable(desk, link)
    return ValidLink(link.id, link.agency_id)


async def begin_install(desk: Desk, link: ValidLink, state: str) -> None:
    """Remembers the OAuth state of this click, so the way back finds the link (an earlier click's
    state stops counting)."""
    async with desk.db.transaction() as session:
        changed = await session.execute(
            update(SlackInstallLink)
            .where(SlackInstallLink.id == link.id, SlackInstallLink.used_at.is_(None))
            .values(state=state)
        )
        if getattr(changed, "rowcount", 1) == 0:
            raise LinkInvalid("this install link was used already; ask for a new one", reason="used")


async def link_of_state(desk: Desk, state: str) -> ValidLink:
    """The usable link whose click issued this OAuth state; LinkInvalid otherwise (nothing written)."""
    if not state or len(state) > 200:
        raise LinkInvalid("this install did not start from an install link", reason="no_link")
    async with desk.db.read() as session:
        link = (
            await session.execute(select(SlackInstallLink).where(SlackInstallLink.state == state))
        ).scalar_one_or_none()
    if link is None:
        raise LinkInvalid("this install did not start from an install link", reason="no_link")
    link = _usable(desk, link)
    return ValidLink(link.id, link.agency_id)


async def connect_agency_slack(
    desk: Desk, *, state: str, team_id: str, channel_id: str | None, installer: str
) -> Connected:
    """Stores the install for the link's agency and uses the link up, with the audit event;
    LinkInvalid when the link was used (or expired) meanwhile."""
    async with desk.db.transaction() as session:
        link = (
            await session.execute(
                select(SlackInstallLink).where(SlackInstallLink.state == state).with_for_update()
            )
        ).scalar_one_or_none()
        link = _usable(desk, link)
        agency = await session.get(Agency, link.agency_id, with_for_update=True)
        if agency is None:
            raise LinkInvalid("this install link's agency is gone", reason="invalid")
        now = desk.clock.now()
        link.used_at, link.team_id = now, team_id
        agency.slack_team_id = team_id
        agency.slack_connected_at, agency.slack_disconnected_at = now, None
        if channel_id:
            agency.slack_channel_id = channel_id
        actor = Actor(ActorKind.agency, agency.id, ChannelKind.slack, member=installer or None)
        await audit(
            session, desk, actor, "agency.slack_connected", "agency", agency.id,
            {"team_id": team_id, "channel_id": agency.slack_channel_id, "link": link.id},
        )  # fmt: skip
        return Connected(agency.id, team_id, agency.slack_channel_id)


async def disconnect_slack_team(desk: Desk, team_id: str, *, reason: str) -> list[str]:
    """Marks every agency connected in this workspace disconnected (audited); their ids."""
    actor = Actor(ActorKind.system, f"slack:{team_id}", ChannelKind.slack)
    async with desk.db.transaction() as session:
        agencies = (
            (
                await session.execute(
                    select(Agency)
                    .where(Agency.slack_team_id == team_id, Agency.slack_disconnected_at.is_(None))
                    .order_by(Agency.id)
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        now = desk.clock.now()
        for agency in agencies:
            agency.slack_disconnected_at = now
            await audit(
                session, desk, actor, "agency.slack_disconnected", "agency", agency.id,
                {"team_id": team_id, "reason": reason},
            )  # fmt: skip
        return [a.id for a in agencies]


def slack_status(agency: Agency) -> str:
    """How the agency's board reaches Slack: `connected` (installed through its link),
    `disconnected` (uninstalled or revoked), or `token` (the one SLACK_BOT_TOKEN workspace)."""
    if agency.slack_disconnected_at is not None:
        return "disconnected"
    if agency.slack_team_id is not None:
        return "connected"
    return "token"

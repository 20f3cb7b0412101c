"""The `likeness agency ...` and `likeness artist ...` record commands: add, list, show, update,
members, deactivate (registered by bot.cli). Every change names who made it (`--by`, default the
OS user) in the audit chain."""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, Any

import typer

from bot import workflow
from bot.cli_base import (
    BadInput,
    JsonFlag,
    _check_name,
    _check_slack_id,
    _check_timezone,
    _emit,
    _run,
    agency_app,
    artist_app,
)
from bot.models import Language, Media, Policy, RedLines, Sensitive
from bot.workflow import Desk

member_app = typer.Typer(help="The Slack members allowed to act for an agency.", no_args_is_help=True)
agency_app.add_typer(member_app, name="member")

AgencyArg = Annotated[str, typer.Argument(metavar="AGY", help="The agency's id.")]
ArtistArg = Annotated[str, typer.Argument(metavar="ART", help="The artist's id.")]


def default_by() -> str:
    """Who runs the command, as the operating system names them ('admin' when it cannot tell)."""
    try:
        return getpass.getuser() or "admin"
    except (OSError, KeyError, ImportError):
        return "admin"


ByOption = Annotated[
    str | None, typer.Option("--by", help="Who makes the change, for the audit (default: the OS user).")
]


def by_of(value: str | None) -> str:
    """The `--by` value checked like a name, or the OS user."""
    if value is None:
        return default_by()
    try:
        return _check_name(value)
    except BadInput:
        raise BadInput("--by must be a name of 1 to 200 plain characters") from None


def _check_language(value: str) -> Language:
    """An agency's language as the command line spells it; anything else is refused in one line."""
    for language in Language:
        if value.strip() == language.value:
            return language
    raise BadInput(f"--language {value!r} must be one of: {', '.join(Language)}")


def show_record(record: dict[str, Any]) -> str:
    """A record as `key: value` lines for people."""
    return "\n".join(f"{key}: {value}" for key, value in record.items())


def show_list(records: list[dict[str, Any]], *fields: str) -> str:
    """One line per record with the given fields; a word when there are none."""
    if not records:
        return "(none)"
    return "\n".join(
        "  ".join(str(r.get(f) if r.get(f) is not None else "-") for f in fields) for r in records
    )


def emit_list(as_json: bool, kind: str, records: list[dict[str, Any]], *fields: str) -> None:
    """Prints records under `kind` as JSON, or one line per record with the given fields."""
    _emit(as_json, {kind: records}, show_list(records, *fields))


def add_show_command(
    sub: typer.Typer, argument: object, show: Callable[[Desk, str], Awaitable[dict[str, Any]]], doc: str
) -> None:
    """Adds `show ID` to `sub`, described by `doc`: prints the one record `show` reads (JSON, or
    `key: value` lines). `argument` is the record id's Annotated type, which gives the command
    line its metavar and help."""

    def command(record_id: str, as_json: JsonFlag = False) -> None:
        async def work(desk: Desk) -> dict[str, Any]:
            return await show(desk, record_id)

        record = _run(work)
        _emit(as_json, record, show_record(record))

    command.__annotations__["record_id"] = argument
    command.__doc__ = doc
    sub.command("show")(command)


def emit_deactivated(
    as_json: bool,
    kind: str,
    deactivate: Callable[..., Awaitable[dict[str, Any]]],
    record_id: str,
    by: str | None,
) -> None:
    """Deactivates one record in the name of `--by` and prints when."""

    async def work(desk: Desk) -> dict[str, Any]:
        return await deactivate(desk, record_id, by=by_of(by))

    record = _run(work)
    _emit(as_json, record, f"{kind} {record_id} deactivated at {record['deactivated_at']}")


def _changed(kind: str, record: dict[str, Any]) -> str:
    changed = record.get("changed")
    if not changed:
        return f"{kind} {record['id']}: nothing changed"
    return f"{kind} {record['id']}: changed {', '.join(changed) if isinstance(changed, list) else 'members'}"


# ---------------------------------------------------------------- agencies


@agency_app.command("add")
def agency_add(
    name: Annotated[str, typer.Option("--name", help="The agency's name.")],
    slack_channel: Annotated[
        str | None, typer.Option("--slack-channel", help="Slack channel id, e.g. C0123.")
    ] = None,
    slack_member: Annotated[
        list[str] | None, typer.Option("--slack-member", help="Slack member id allowed to act (repeatable).")
    ] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA time zone for reports.")] = "UTC",
    language: Annotated[
        str, typer.Option("--language", help="What its Slack board speaks: zh-Hans or en.")
    ] = "en",
    as_json: JsonFlag = False,
) -> None:
    """Registers an agency."""

    async def work(desk: Desk) -> str:
        members = [_check_slack_id("--slack-member", m, "U0123ABC") for m in slack_member or []]
        agency = await workflow.add_agency(
            desk,
            name=_check_name(name),
            slack_channel_id=_check_slack_id("--slack-channel", slack_channel, "C0123ABC")
            if slack_channel
            else None,
            slack_member_ids=members,
            timezone=_check_timezone(timezone),
            language=_check_language(language),
        )
        return agency.id

    agency_id = _run(work)
    _emit(as_json, {"id": agency_id}, f"agency {agency_id}")


@agency_app.command("list")
def agency_list(as_json: JsonFlag = False) -> None:
    """Lists the agencies."""
    emit_list(as_json, "agencies", _run(workflow.list_agencies), "id", "name", "slack_channel_id", "artists")


add_show_command(
    agency_app,
    AgencyArg,
    workflow.show_agency,
    "Shows one agency: its Slack channel, members, time zone and artists.",
)


@agency_app.command("update")
def agency_update(
    agency_id: AgencyArg,
    name: Annotated[str | None, typer.Option("--name", help="The agency's name.")] = None,
    slack_channel: Annotated[
        str | None, typer.Option("--slack-channel", help="Slack channel id, e.g. C0123.")
    ] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="IANA time zone for reports.")] = None,
    language: Annotated[
        str | None, typer.Option("--language", help="What its Slack board speaks: zh-Hans or en.")
    ] = None,
    by: ByOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Changes an agency's name, Slack channel, time zone or language."""

    async def work(desk: Desk) -> dict[str, Any]:
        return await workflow.update_agency(
            desk,
            agency_id,
            by=by_of(by),
            name=_check_name(name) if name is not None else None,
            slack_channel_id=_check_slack_id("--slack-channel", slack_channel, "C0123ABC")
            if slack_channel is not None
            else None,
            timezone=_check_timezone(timezone) if timezone is not None else None,
            language=_check_language(language) if language is not None else None,
        )

    record = _run(work)
    _emit(as_json, record, _changed("agency", record))


def _member(agency_id: str, member: str, by: str | None, as_json: bool, *, add: bool) -> None:
    async def work(desk: Desk) -> dict[str, Any]:
        checked = _check_slack_id("member", member, "U0123ABC")
        return await workflow.change_agency_member(desk, agency_id, checked, by=by_of(by), add=add)

    record = _run(work)
    verb = "added to" if add else "removed from"
    human = f"{member.strip()} {verb} {agency_id}" if record["changed"] else f"{agency_id}: nothing changed"
    _emit(as_json, record, human)


MemberArg = Annotated[str, typer.Argument(metavar="Uxxx", help="The Slack member id.")]


@member_app.command("add")
def member_add(
    agency_id: AgencyArg, member: MemberArg, by: ByOption = None, as_json: JsonFlag = False
) -> None:
    """Lets a Slack member act for the agency on its board."""
    _member(agency_id, member, by, as_json, add=True)


@member_app.command("remove")
def member_remove(
    agency_id: AgencyArg, member: MemberArg, by: ByOption = None, as_json: JsonFlag = False
) -> None:
    """Stops a Slack member acting for the agency from the next tap."""
    _member(agency_id, member, by, as_json, add=False)


# ---------------------------------------------------------------- artists


def _red_lines(values: list[str]) -> RedLines:
    media: list[Media] = []
    sensitive: list[Sensitive] = []
    for value in values:
        kind, _, item = value.partition(":")
        try:
            if kind == "media":
                media.append(Media(item))
            elif kind == "sensitive":
                sensitive.append(Sensitive(item))
            else:
                raise ValueError
        except ValueError:
            raise BadInput(
                f"--red-line {value!r} must be media:<{'|'.join(Media)}> or sensitive:<{'|'.join(Sensitive)}>"
            ) from None
    return RedLines(media=media, sensitive=sensitive)


class LanguageChoice(StrEnum):
    """Languages as the command line spells them."""

    zh_hans = "zh-Hans"
    en = "en"


RedLineOption = Annotated[
    list[str] | None,
    typer.Option("--red-line", help="Never accepted, e.g. sensitive:political or media:game (repeatable)."),
]


@artist_app.command("add")
def artist_add(
    name: Annotated[str, typer.Option("--name", help="The artist's name.")],
    agency: Annotated[str | None, typer.Option("--agency", help="The agency's id.")] = None,
    policy: Annotated[Policy, typer.Option("--policy", help="Who may decide.")] = Policy.artist_only,
    language: Annotated[
        LanguageChoice, typer.Option("--language", help="Card language.")
    ] = LanguageChoice.en,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA time zone.")] = "UTC",
    red_line: RedLineOption = None,
    require_preview: Annotated[
        bool, typer.Option("--require-preview", help="Every request must let the artist release outputs.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Registers an artist."""

    async def work(desk: Desk) -> str:
        artist = await workflow.add_artist(
            desk,
            name=_check_name(name),
            agency_id=agency,
            policy=policy,
            language=Language(language.value),
            timezone=_check_timezone(timezone),
            red_lines=_red_lines(red_line or []),
            require_preview=require_preview,
        )
        return artist.id

    artist_id = _run(work)
    _emit(as_json, {"id": artist_id}, f"artist {artist_id}")


@artist_app.command("list")
def artist_list(
    agency: Annotated[str | None, typer.Option("--agency", help="Only this agency's artists.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Lists the artists (or one agency's)."""

    async def work(desk: Desk) -> list[dict[str, Any]]:
        return await workflow.list_artists(desk, agency_id=agency)

    emit_list(as_json, "artists", _run(work), "id", "name", "agency_id", "policy", "deactivated_at")


add_show_command(
    artist_app,
    ArtistArg,
    workflow.show_artist,
    "Shows one artist: policy, red lines, language, time zone, agency and counts.",
)


@artist_app.command("update")
def artist_update(
    artist_id: ArtistArg,
    name: Annotated[str | None, typer.Option("--name", help="The artist's name.")] = None,
    agency: Annotated[str | None, typer.Option("--agency", help="The agency's id.")] = None,
    policy: Annotated[Policy | None, typer.Option("--policy", help="Who may decide.")] = None,
    language: Annotated[LanguageChoice | None, typer.Option("--language", help="Card language.")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="IANA time zone.")] = None,
    red_line: RedLineOption = None,
    no_red_lines: Annotated[bool, typer.Option("--no-red-lines", help="Clear every red line.")] = False,
    require_preview: Annotated[
        bool | None,
        typer.Option(
            "--require-preview/--no-require-preview",
            help="Every request must (or need no longer) let the artist release outputs.",
        ),
    ] = None,
    by: ByOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Changes an artist's record; the artist is told in Telegram. Decisions made after it follow
    the new policy. `--red-line` replaces the whole list."""

    async def work(desk: Desk) -> dict[str, Any]:
        if red_line and no_red_lines:
            raise BadInput("give --red-line or --no-red-lines, not both")
        lines = _red_lines(red_line) if red_line else (RedLines() if no_red_lines else None)
        return await workflow.update_artist(
            desk,
            artist_id,
            by=by_of(by),
            name=_check_name(name) if name is not None else None,
            agency_id=agency,
            policy=policy,
            language=Language(language.value) if language is not None else None,
            timezone=_check_timezone(timezone) if timezone is not None else None,
            red_lines=lines,
            require_preview=require_preview,
        )

    record = _run(work)
    _emit(as_json, record, _changed("artist", record))


@artist_app.command("deactivate")
def artist_deactivate(artist_id: ArtistArg, by: ByOption = None, as_json: JsonFlag = False) -> None:
    """No new requests for the artist (the API answers 409 `deactivated`); existing grants stand."""
    emit_deactivated(as_json, "artist", workflow.deactivate_artist, artist_id, by)

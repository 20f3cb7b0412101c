"""What the Telegram bot says, in both languages: cards, answers, notices; and the signed buttons."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po

from bot.models import (
    ActorKind,
    Compensation,
    Language,
    Media,
    Outcome,
    RequestStatus,
    Sensitive,
    Terms,
    ViolationReason,
)
from bot.render import telegram, telegram_deletion, telegram_reports, violations, words
from bot.render import telegram_cards as cards
from bot.render.buttons import Action, CallbackSigner, read_seen_subject, seen_subject
from bot.render.telegram_cards import Card, DecisionLine
from bot.render.words import LOCALE_DIR
from bot.reports import ExpiringItem, GrantUsage, PendingItem, Report
from sandbox.telegram import MAX_CALLBACK_DATA_BYTES, MAX_MESSAGE_LENGTH, parse_html

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
BOTH = [Language.en, Language.zh_hans]


def terms(**overrides: Any) -> Terms:
    data: dict[str, Any] = {
        "artist_id": "art_0000000000000001",
        "creator_id": "crt_0000000000000001",
        "project_title": "Moonlight Drama S2",
        "use_description": "A digital double of the actor in three dialogue scenes of episode 4.",
        "media": ["series", "advertising"],
        "likeness": ["face", "voice"],
        "territory": ["CN", "SG"],
        "starts_at": NOW + timedelta(days=1),
        "ends_at": NOW + timedelta(days=90),
        "decision_due_at": NOW + timedelta(hours=72),
        "ai_training": False,
        "compensation": {"amount": "5000", "currency": "CNY"},
        "labeling": "Visible 'AI-generated' label",
    }
    return Terms.model_validate(data | overrides)


def card(language: Language = Language.en, **overrides: Any) -> Card:
    fields: dict[str, Any] = {
        "request_id": "req_0123456789abcdef",
        "terms": terms(),
        "creator_name": "Dream Studio",
        "status": RequestStatus.pending,
        "decisions": (),
        "updated_at": NOW,
        "language": language,
        "timezone": "Asia/Shanghai",
    }
    return Card(**(fields | overrides))


def plain(html: str) -> str:
    text, _entities = parse_html(html)
    return text


# ---------------------------------------------------------------- the card


def test_the_card_shows_every_term_and_the_deadline_in_the_artists_time_zone() -> None:
    text = plain(cards.card(card()).text)

    for expected in [
        "Likeness request: Moonlight Drama S2",
        "From: Dream Studio",
        "A digital double of the actor",
        "Media: advertising and series",
        "Likeness: face and voice",
        "Territory: China and Singapore",
        "Window: Nov 26, 2026 – Feb 23, 2027",
        "Compensation: CN¥5,000.00",
        "Sublicensing: not allowed",
        "AI labelling: Visible 'AI-generated' label",
        "AI training: not requested",
        "Decide by: Sat, Nov 28, 2026 17:00 (Asia/Shanghai)",  # 09:00 UTC + 72 h, in Shanghai
        "Ref req_0123456789abcdef",
    ]:
        assert expected in text


def test_the_card_in_chinese_has_chinese_labels_buttons_and_dates() -> None:
    rendered = cards.card(card(Language.zh_hans, terms=terms(territory=["worldwide"], sublicensing=True)))
    text = plain(rendered.text)

    assert "肖像使用请求：Moonlight Drama S2" in text
    assert "媒介：广告和剧集" in text
    assert "地区：全球" in text
    assert "转授权：允许" in text
    assert "决定截止：2026年11月28日周六 17:00 (Asia/Shanghai)" in text
    assert [[b.label for b in row] for row in rendered.keyboard] == [["同意", "拒绝"]]


def test_sensitive_flags_come_first_and_bold() -> None:
    rendered = cards.card(card(terms=terms(sensitive=["sexual_content", "real_time_interactive"])))
    text, entities = parse_html(rendered.text)

    first_line = text.split("\n", 1)[0]
    assert first_line.startswith("⚠️ Sensitive: real-time interactive use") and "sexual content" in first_line
    assert {"type": "bold", "offset": 0, "length": len(first_line.encode("utf-16-le")) // 2} in entities


@pytest.mark.parametrize("language", BOTH)
def test_ai_training_comes_with_a_plain_warning_that_a_model_will_learn_the_likeness(
    language: Language,
) -> None:
    text = plain(cards.card(card(language, terms=terms(ai_training=True))).text)

    warning = "a model will learn your likeness" if language is Language.en else "一个模型将学习你的肖像"
    assert warning in text


def test_a_studios_text_cannot_inject_markup() -> None:
    hostile = terms(
        project_title="<b>Free</b> & <a href='x'>easy</a>",
        use_description="</i><script>alert(1)</script> with enough length to be valid text",
        labeling="<tg-spoiler>hidden</tg-spoiler>",
    )
    text, entities = parse_html(cards.card(card(terms=hostile)).text)

    assert "<b>Free</b> & <a href='x'>easy</a>" in text
    assert "</i><script>alert(1)</script>" in text
    assert not any(e["type"] in {"text_link", "spoiler"} for e in entities)


@pytest.mark.parametrize("language", BOTH)
def test_the_largest_possible_request_still_fits_one_telegram_message(language: Language) -> None:
    huge = terms(
        project_title="T" * 200,
        use_description="D" * 2000,
        labeling="L" * 1000,
        territory=["worldwide"],
        sensitive=[s.value for s in Sensitive],
        media=[m.value for m in Media],
        likeness=["face", "voice", "body", "name"],
        reference_urls=[f"https://example.com/{'x' * 80}/{n}" for n in range(20)],
        ai_training=True,
        compensation={"amount": "123456789012.34", "currency": "USD"},
    )
    text = plain(cards.card(card(language, terms=huge, creator_name="C" * 200)).text)

    assert len(text) <= MAX_MESSAGE_LENGTH
    assert "D" * 2000 in text  # the description is never the part that gets cut here


@pytest.mark.parametrize(
    ("status", "decisions", "expected"),
    [
        (
            RequestStatus.approved,
            (DecisionLine("approve", "artist", "Li Wei", "telegram", NOW),),
            "✅ Approved by Li Wei (artist, Telegram) · Wed, Nov 25, 2026 17:00 (Asia/Shanghai)",
        ),
        (
            RequestStatus.denied,
            (DecisionLine("deny", "agency", "Mia", "slack", NOW, "Too little pay"),),
            "❌ Declined by Mia (agency, Slack) · Wed, Nov 25, 2026 17:00 (Asia/Shanghai)\n"
            "Reason: Too little pay",
        ),
        (RequestStatus.lapsed, (), "⌛ Lapsed: no decision before the deadline"),
        (RequestStatus.withdrawn, (), "↩️ Withdrawn by the studio · Wed, Nov 25, 2026 17:00"),
        (
            RequestStatus.awaiting_cosign,
            (DecisionLine("approve", "artist", "Li Wei", "telegram", NOW),),
            "🕓 You approved · Wed, Nov 25, 2026 17:00 (Asia/Shanghai). "
            "Waiting for your agency's co-signature.",
        ),
    ],
)
def test_a_closed_card_says_the_outcome_who_and_when_and_has_no_buttons(
    status: RequestStatus, decisions: tuple[DecisionLine, ...], expected: str
) -> None:
    rendered = cards.card(card(status=status, decisions=decisions))

    assert expected in plain(rendered.text)
    assert "Decide by" not in plain(rendered.text)
    assert rendered.keyboard == ()


def test_when_the_agency_approved_first_the_artist_still_gets_the_buttons() -> None:
    agency_first = (DecisionLine("approve", "agency", "Mia", "slack", NOW),)
    rendered = cards.card(card(status=RequestStatus.awaiting_cosign, decisions=agency_first))

    assert "Your agency approved (Mia (agency, Slack)); your approval completes it." in plain(rendered.text)
    assert [[b.action for b in row] for row in rendered.keyboard] == [[Action.approve, Action.deny]]


# ---------------------------------------------------------------- answers and notices


@pytest.mark.parametrize("language", BOTH)
def test_every_answer_and_notice_is_valid_telegram_html(language: Language) -> None:
    report = Report(
        recipient_kind="artist",
        recipient_id="art_1",
        recipient_name="Li <Wei>",
        timezone="Asia/Shanghai",
        period_start=NOW - timedelta(days=7),
        period_end=NOW,
        grants=[
            GrantUsage("grt_1", "req_1", "Drama & <Co>", "Li", "active", {"render": 1200, "train": 1}, 2),
            GrantUsage("grt_2", "req_2", "Quiet one", "Li", "active", {}, 0),
        ],
        pending=[PendingItem("req_3", "Pending", "Li", NOW + timedelta(days=1))],
        expiring_soon=[ExpiringItem("grt_1", "Drama & <Co>", "Li", NOW + timedelta(days=3))],
    )
    grant = telegram.GrantLine("grt_1", "T<i>", "Studio & Co", NOW, NOW + timedelta(days=30), "active", True)
    texts = [
        telegram.welcome(language, "A<b>", ActorKind.artist),
        telegram.welcome(language, "A<b>", ActorKind.creator),
        telegram.help_text(language),
        telegram.not_linked(language),
        telegram.artists_only(language),
        telegram.unknown_text(language),
        telegram.decline_recorded(language),
        telegram.language_set(language),
        telegram.report_queued(language),
        telegram.already_linked_elsewhere(language),
        cards.deny_prompt(language, "req_0123456789abcdef", "T<>"),
        telegram.pending_list(language, "UTC", []).text,
        telegram.pending_list(language, "UTC", [telegram.PendingLine("req_1", "T&", NOW, True)]).text,
        telegram.grants_list(language, "UTC", [grant]).text,
        telegram.grants_list(language, "UTC", []).text,
        telegram.revoke_question(language, grant).text,
        telegram.revoked(language, "UTC", "T<", NOW),
        telegram.revoke_kept(language, "T<"),
        telegram.decision_reminder(language, "UTC", "T<", NOW + timedelta(hours=2), NOW, escalation=True),
        telegram.grant_reminder(language, "UTC", "T<", NOW + timedelta(days=7)),
        telegram.grant_expired(language, "T<"),
        telegram_deletion.artist_confirmed(language, "UTC", "T<", "Studio & <Co>", NOW),
        telegram_reports.report_text(language, report),
        telegram_reports.report_caption(language),
        telegram.language_menu(language).text,
        *(telegram.invite_refused(language, why) for why in ("used", "expired", "unknown")),
        violations.artist_notice(
            language,
            "Asia/Shanghai",
            title="T<&>",
            creator_name="Studio <b>",
            grant_id="grt_1",
            payload={
                "violation_id": "vio_1",
                "usage_id": "use_1",
                "kind": "publish",
                "count": 3,
                "media": "game",
                "territory": ["US", "CN"],
                "likeness": ["face"],
                "reasons": [reason.value for reason in ViolationReason],
                "grant_status": "active",
                "occurred_at": "2026-11-25T09:00:00Z",
            },
        )[0],
    ]
    for event in [
        "request.submitted",
        "request.approved",
        "request.denied",
        "request.awaiting_cosign",
        "request.lapsed",
        "request.withdrawn",
        "grant.active",
        "grant.expiring",
        "grant.expired",
        "grant.revoked",
        "usage.violation",
        "deletion.due",
        "deletion.reminder",
        "deletion.confirmed",
        "something.new",
    ]:
        payload = {
            "event": event,
            "request_id": "req_1",
            "grant_id": "grt_1",
            "reason": "a<b",
            "ends_at": "2026-12-01T00:00:00Z",
        }
        texts.append(telegram.creator_status(language, "UTC", "T<&>", payload))

    for text in texts:
        shown, _ = parse_html(text)  # raises when Telegram would refuse the markup
        assert 0 < len(shown) <= MAX_MESSAGE_LENGTH
    assert "Drama & <Co>" in plain(telegram_reports.report_text(language, report))


@pytest.mark.parametrize("language", BOTH)
def test_refusals_fit_an_alert_and_say_who_and_when(language: Language) -> None:
    details = {
        "status": "approved",
        "decided_by": "agency",
        "decided_by_name": "Mia",
        "channel": "slack",
        "decided_at": "2026-11-25T09:00:00Z",
    }
    already = telegram.refusal(language, "Asia/Shanghai", "already_decided", "", details)

    assert "Mia" in already and "17:00" in already
    for code, status in [("not_open", "lapsed"), ("not_open", "withdrawn"), ("not_allowed", ""), ("x", "")]:
        text = telegram.refusal(language, "UTC", code, "", {"status": status})
        assert 0 < len(text) <= telegram.MAX_ALERT
    assert telegram.tap_answer(language, Outcome.deny)


def test_stored_and_telegram_language_codes_map_to_ours() -> None:
    assert words.language_of("zh-Hans") is Language.zh_hans
    assert words.language_of("zh-hans") is Language.zh_hans
    assert words.language_of("zh-TW") is Language.zh_hans
    assert words.language_of("en") is Language.en
    assert words.language_of("de") is Language.en
    assert words.language_of(None) is Language.en


def test_money_keeps_its_currency() -> None:
    voice = words.Voice(Language.en)
    assert voice.money(Compensation(amount=Decimal("10.5"), currency="EUR")) == "€10.50"


# ---------------------------------------------------------------- catalogs


def test_every_text_has_a_chinese_translation_with_the_same_placeholders() -> None:
    with (LOCALE_DIR / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    with (LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        chinese = read_po(handle)
    wanted = {m.id for m in template if m.id}

    translated = {m.id: m for m in chinese if m.id}
    assert wanted <= set(translated), sorted(wanted - set(translated))
    for message_id in wanted:
        message = translated[message_id]
        assert message.string and not message.fuzzy, message_id
        placeholders = re.compile(r"%\(\w+\)s")
        assert sorted(placeholders.findall(str(message_id))) == sorted(
            placeholders.findall(str(message.string))
        )
        tags = re.compile(r"</?\w+")
        assert sorted(tags.findall(str(message_id))) == sorted(tags.findall(str(message.string))), message_id


@pytest.mark.parametrize(
    "catalog", ["messages.pot", "en/LC_MESSAGES/messages.po", "zh_Hans/LC_MESSAGES/messages.po"]
)
def test_every_catalog_reads_without_a_warning(catalog: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Babel prints (and does not raise) when an entry lost its msgstr; the service would print it at start.
    with (LOCALE_DIR / catalog).open("rb") as handle:
        read_po(handle)
    printed = capsys.readouterr()
    assert "WARNING" not in printed.out + printed.err


def test_the_template_holds_every_text_the_code_uses() -> None:
    with (LOCALE_DIR / "messages.pot").open("rb") as handle:
        template = {m.id for m in read_po(handle) if m.id}
    used = set()
    for module in sorted((LOCALE_DIR.parent / "render").glob("*.py")):
        with module.open("rb") as handle:
            used |= {found[1] for found in extract("python", handle, keywords={"_": (1,), "N_": (1,)})}

    assert used == template, "run pybabel extract and update (see bot/render/words.py)"


# ---------------------------------------------------------------- signed buttons


def test_signed_button_data_fits_telegram_and_reads_back() -> None:
    signer = CallbackSigner(b"k" * 64)
    longest = max((a.value for a in Action), key=len) + ".terms"

    data = signer.sign(longest, "req_0123456789abcdef")

    assert len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
    tap = signer.read(data)
    assert tap is not None and (tap.action, tap.subject) == (longest, "req_0123456789abcdef")


def test_a_card_button_carries_the_terms_it_showed_and_still_fits_telegram() -> None:
    signer = CallbackSigner(b"k" * 64)
    longest = max((a.value for a in Action), key=len) + ".terms"
    subject = seen_subject("req_0123456789abcdef", "ab" * 32)

    data = signer.sign(longest, subject)

    assert len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
    tap = signer.read(data)
    assert tap is not None and read_seen_subject(tap.subject) == ("req_0123456789abcdef", "abababab")
    assert read_seen_subject("req_0123456789abcdef") == ("req_0123456789abcdef", None)


def test_changed_or_foreign_button_data_is_refused() -> None:
    signer = CallbackSigner(b"k" * 64)
    data = signer.sign("ok", "req_0123456789abcdef")

    assert signer.read(data.replace("req_0123456789abcdef", "req_fedcba9876543210")) is None
    assert signer.read(data.replace("ok:", "no:")) is None
    assert signer.read(CallbackSigner(b"other key").sign("ok", "req_0123456789abcdef")) is None
    assert signer.read("ok:req_0123456789abcdef") is None
    assert signer.read(None) is None
    assert signer.read("") is None

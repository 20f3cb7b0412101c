"""The sandbox page in a real browser: Chromium (Debian's) drives /sandbox against a real `likeness serve`.

Everything a click does goes through production paths: the creator pane calls the REST API, the
Telegram pane taps buttons through the Telegram simulator (the bot long-polls it), the Slack pane
clicks through the Slack simulator (which posts signed requests to /slack/events). The tests share
one service and one browser; each uses its own request titles, and the one that moves the clock
runs last. Screenshots of each pane land in test-output/sandbox/.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.receipts import parse_keys_document, verify_receipt
from sandbox.service_process import ROOT, ServiceProcess, service_env, start_service

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"browser tests skipped: no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does it)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = ROOT / "test-output" / "sandbox"
_titles = itertools.count(1)
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One `likeness serve` in sandbox mode, without platform tokens, for the whole module."""
    folder = tmp_path_factory.mktemp("sandbox")
    service = start_service(service_env(folder, SANDBOX="true"), folder, tag="sandbox")
    try:
        yield service
    finally:
        service.stop()
    assert "Traceback" not in service.log(), service.log()


@pytest.fixture(scope="module")
def config(served: ServiceProcess) -> dict[str, Any]:
    """Who is who in the demo, as the page reads it."""
    answer: dict[str, Any] = httpx.get(f"{served.url}/sandbox/config", timeout=10).json()
    return answer


@pytest.fixture(scope="module")
def browser(served: ServiceProcess) -> Iterator[Browser]:
    """Headless Chromium from the Debian package; Playwright downloads nothing (closed before the service)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, served: ServiceProcess) -> Iterator[Page]:
    """A fresh tab on /sandbox, in English, ready; fails the test on any script error in the page."""
    context = browser.new_context(
        viewport={"width": 1600, "height": 1000}, locale="en-US", timezone_id="UTC", accept_downloads=True
    )
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(f"{served.url}/sandbox")
    expect(tab.locator("body[data-ready=true]")).to_be_attached()
    try:
        yield tab
    finally:
        context.close()
    assert errors == []


def unique(title: str) -> str:
    return f"{title} #{next(_titles)}"


def artist(config: dict[str, Any], key: str) -> dict[str, Any]:
    return next(a for a in config["artists"] if a["key"] == key)


def send_request(page: Page, config: dict[str, Any], *, to: str, title: str, **options: Any) -> Locator:
    """Fills the creator form on top of its example, sends it, and returns the request's row."""
    page.select_option("#f-artist", artist(config, to)["id"])
    page.fill("#f-title", title)
    if options.get("ai_training"):
        page.check("#f-ai")
    if options.get("window"):
        page.click(f"#window-quick button[data-window='{options['window']}']")
    page.click("#send-request")
    row = page.locator("#requests li.req").filter(has=page.locator(".req-title", has_text=title))
    expect(row).to_have_attribute("data-status", "pending")
    expect(page.locator("#send-request")).to_be_enabled()
    return row


def telegram_card(page: Page, config: dict[str, Any], *, of: str, title: str) -> Locator:
    """The request's card in the artist's chat (the artist's tab is chosen first)."""
    page.click(f"#artist-switch button[data-artist='{of}']")
    return page.locator("#tg-chat .tg-msg.in").filter(has_text=title).filter(has_text="Ref req_")


def board_message(page: Page, title: str) -> Locator:
    """The request's root message on the agency's board."""
    return page.locator("#slack-feed > .slack-msg").filter(has_text=title)


def approved_on_lins_behalf(page: Page, config: dict[str, Any], title: str) -> tuple[Locator, Locator]:
    """Sends a request to Lin, and a listed member approves it on her behalf on the board (Slack's
    confirmation included): (the request's row, its board message)."""
    row = send_request(page, config, to="lin", title=title)
    message = board_message(page, title)
    message.get_by_role("button", name="代为同意").click()
    page.locator(".slack-confirm .confirm-go").click()
    return row, message


def approved_by_maya(
    page: Page, config: dict[str, Any], title: str, **options: Any
) -> tuple[Locator, Locator]:
    """Sends a request to Maya (with `send_request`'s options), and she taps Approve on its card in
    Telegram: (the request's row, its card)."""
    row = send_request(page, config, to="maya", title=title, **options)
    card = telegram_card(page, config, of="maya", title=title)
    card.get_by_role("button", name="Approve", exact=True).click()
    return row, card


def shoot(page: Page, name: str) -> None:
    """Saves each pane and the whole page under test-output/sandbox/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    # Passing notes (toasts) would cover the panes; they are not what the pictures are for.
    page.locator(".toast").evaluate_all("(notes) => notes.forEach((n) => n.remove())")
    page.locator("#tg-toast").evaluate("(note) => { note.hidden = true; }")
    for pane in ("creator", "telegram", "slack"):
        page.locator(f"#{pane}-pane").screenshot(path=str(SHOTS / f"{name}-{pane}.png"))
    page.screenshot(path=str(SHOTS / f"{name}-page.png"))


def test_a_request_approved_in_telegram_shows_as_approved_everywhere(
    page: Page, config: dict[str, Any], served: ServiceProcess
) -> None:
    title = unique("Neon Harbor, episode 3")
    row = send_request(page, config, to="maya", title=title)

    card = telegram_card(page, config, of="maya", title=title)
    expect(card).to_contain_text("Likeness request")
    expect(board_message(page, title)).to_contain_text("等待 Maya Brooks 决定")  # the agency is Chinese
    card.get_by_role("button", name="Approve", exact=True).click()

    expect(page.locator("#tg-toast")).to_have_text("Approved. Thank you.")
    expect(card.locator(".tg-btn")).to_have_count(0)
    expect(card).to_contain_text("Approved by")
    expect(row).to_have_attribute("data-status", "approved")
    expect(row.locator(".grant-state")).to_have_text("active")
    root = board_message(page, title).locator("[data-part=root]")
    expect(root).to_contain_text("已同意，由 Maya Brooks（艺人本人，在 Telegram 中）")
    expect(root.get_by_role("button", name="提醒艺人")).to_have_count(0)

    with page.expect_download() as download:
        row.locator("a.receipt").click()
    receipt = json.loads(Path(download.value.path()).read_text())
    keys = parse_keys_document(httpx.get(f"{served.url}/.well-known/likeness-keys.json").json())
    verify_receipt(receipt, keys)  # signed by the service, terms as shown on the card
    assert receipt["terms"]["project_title"] == title
    shoot(page, "approved")


def test_ai_training_needs_the_artists_second_tap(page: Page, config: dict[str, Any]) -> None:
    title = unique("Voice model for dubbing")
    row = send_request(page, config, to="maya", title=title, ai_training=True)
    expect(row.locator(".tag.ai")).to_be_visible()
    expect(board_message(page, title)).to_contain_text("请求用于 AI 训练")

    card = telegram_card(page, config, of="maya", title=title)
    expect(card).to_contain_text("AI training")
    card.get_by_role("button", name="Approve", exact=True).click()
    confirm = card.get_by_role("button", name="Also allow AI training of my likeness")
    expect(confirm).to_be_visible()
    expect(page.locator("#tg-toast")).to_contain_text("please confirm")
    expect(row).to_have_attribute("data-status", "pending")

    confirm.click()
    expect(card.locator(".tg-btn")).to_have_count(0)
    expect(row).to_have_attribute("data-status", "approved")
    expect(board_message(page, title).locator("[data-part=root]")).to_contain_text("由 Maya Brooks")

    # The artist's own commands, typed in the chat: the consent is listed with a Revoke button.
    page.fill("#tg-input", "/grants")
    page.press("#tg-input", "Enter")
    answer = page.locator("#tg-chat .tg-msg.in").filter(has_text="Your consents")
    expect(answer.last).to_contain_text(title)
    expect(answer.last.locator(".tg-btn").first).to_contain_text("Revoke")


def test_the_agency_denies_on_the_artists_behalf_with_a_reason_in_slack(
    page: Page, config: dict[str, Any]
) -> None:
    title = unique("Night market commercial")
    row = send_request(page, config, to="lin", title=title)
    message = board_message(page, title)
    expect(message).to_contain_text("经纪公司可代为决定")

    message.get_by_role("button", name="代为拒绝").click()
    modal = page.locator("#slack-modal")
    expect(modal).to_contain_text("拒绝请求")
    modal.locator("textarea").fill("The fee is below the agreed rate for advertising.")
    modal.locator(".modal-submit").click()
    expect(modal).to_have_count(0)

    root = message.locator("[data-part=root]")
    expect(root).to_contain_text("已拒绝，由 Mei Chen（代表经纪公司，在 Slack 中）")
    expect(root).to_contain_text("理由：The fee is below the agreed rate for advertising.")
    expect(message.locator(".slack-thread")).to_contain_text("在 Slack 中拒绝")
    expect(row).to_have_attribute("data-status", "denied")
    expect(row.locator(".req-reason")).to_contain_text("The fee is below the agreed rate")
    # The artist's card (in Chinese) loses its buttons: the decision was made for them.
    card = telegram_card(page, config, of="lin", title=title)
    expect(card.locator(".tg-btn")).to_have_count(0)
    shoot(page, "denied-in-slack")


def test_a_listed_member_approves_on_behalf_after_slacks_confirmation(
    page: Page, config: dict[str, Any]
) -> None:
    title = unique("Lantern festival poster")
    row, message = approved_on_lins_behalf(page, config, title)

    expect(message.locator("[data-part=root]")).to_contain_text(
        "已同意，由 Mei Chen（代表经纪公司，在 Slack 中）"
    )
    expect(row).to_have_attribute("data-status", "approved")
    expect(telegram_card(page, config, of="lin", title=title).locator(".tg-btn")).to_have_count(0)

    page.fill("#slack-input", "/likeness pending")
    page.press("#slack-input", "Enter")
    expect(page.locator("#slack-feed .slack-msg.ephemeral").last).to_contain_text("Starlight Talent")


def test_the_studio_reports_uses_and_sees_each_violation_with_its_reasons(
    page: Page, config: dict[str, Any]
) -> None:
    title = unique("Rooftop chase, season 2")
    row, message = approved_on_lins_behalf(page, config, title)
    expect(row.locator(".grant-state")).to_have_text("active")

    row.get_by_role("button", name="Report a use").click()
    form = page.locator("#use-form")
    expect(form).to_be_visible()
    answer = page.locator("#use-answer")

    # Publishing must say the medium and where: the API's 422 shows beside the field, nothing is stored.
    page.select_option("#u-kind", "publish")
    page.click("#use-send")
    expect(form.locator(".field[data-use-field=media] .err")).to_contain_text("required for a publish use")
    expect(answer).to_be_hidden()

    # Inside every term (series in CN, the face): recorded, no violation.
    page.select_option("#u-media", "series")
    page.fill("#u-territory", "CN")
    page.click("#use-send")
    expect(answer).to_have_attribute("data-outcome", "inside")
    expect(answer).to_contain_text("Inside every term")

    # A game published in the US: two terms broken, named in the answer.
    page.select_option("#u-media", "game")
    page.fill("#u-territory", "US")
    page.click("#use-send")
    expect(answer).to_have_attribute("data-outcome", "violation")
    expect(answer).to_contain_text("Violation vio_")
    reasons = answer.locator(".reasons li")
    expect(reasons).to_have_count(2)
    expect(reasons.nth(0)).to_contain_text("media_not_granted — the medium is not among those granted")
    expect(reasons.nth(1)).to_contain_text("territory_not_granted")

    # Training a model was never granted.
    page.select_option("#u-kind", "train")
    page.select_option("#u-media", "")
    page.fill("#u-territory", "")
    page.click("#use-send")
    expect(answer.locator(".reasons li")).to_have_count(1)
    expect(answer.locator(".reasons li")).to_contain_text(
        "ai_training_not_granted — AI training was not granted"
    )
    shoot(page, "violation")

    # The agency reads it in the request's thread, with Revoke on behalf (its policy lets it decide) ...
    thread = message.locator(".slack-thread")
    expect(thread).to_contain_text("未授权 AI 训练")
    expect(thread).to_contain_text("该地区超出授权范围")
    # ... and the artist in Telegram, in Chinese, with one tap to revoke.
    told = page.locator("#tg-chat .tg-msg.in").filter(has_text="超出你授权范围的使用").filter(has_text=title)
    page.click("#artist-switch button[data-artist='lin']")
    expect(told.last).to_contain_text("你的授权不包括 AI 训练")
    expect(told.last.locator(".tg-btn")).to_have_text("撤回此授权")

    thread.get_by_role("button", name="代为撤销").last.click()
    page.locator(".slack-confirm .confirm-go").click()
    expect(message.locator("[data-part=root]")).to_contain_text("授权已撤销")
    expect(row.locator(".grant-state")).to_have_text("revoked")


def test_someone_not_on_the_agencys_list_is_told_why_nothing_happened(
    page: Page, config: dict[str, Any]
) -> None:
    title = unique("Festival teaser")
    send_request(page, config, to="lin", title=title)
    page.select_option("#slack-user", "U0SAMGUEST")
    board_message(page, title).get_by_role("button", name="代为拒绝").click()
    expect(page.locator("#slack-feed .slack-msg.ephemeral").last).to_contain_text("未完成")
    expect(page.locator("#slack-modal")).to_have_count(0)


def test_a_bad_form_shows_the_apis_messages_beside_the_fields(
    page: Page, config: dict[str, Any], served: ServiceProcess
) -> None:
    title = unique("Too vague")
    page.fill("#f-title", title)
    page.fill("#f-description", "a video")
    page.fill("#f-territory", "XX")
    page.locator("#f-media label.chip", has_text="series").click()
    page.fill("#f-comp-currency", "ZZZ")
    page.click("#send-request")

    def error_of(field: str) -> Locator:
        return page.locator(f"#request-form .field[data-field={field}] .err")

    expect(error_of("use_description")).to_contain_text("at least 20 characters")
    expect(error_of("territory")).to_contain_text("'XX' is not an ISO 3166-1 alpha-2 code")
    expect(error_of("media")).to_contain_text("at least 1 item")
    expect(error_of("compensation")).to_contain_text("ISO 4217")
    expect(error_of("compensation")).not_to_contain_text("Input should be 'none'")
    expect(error_of("project_title")).to_be_hidden()
    expect(page.locator("#form-error")).to_contain_text("The API refused some fields")
    key = config["creator"]["api_key"]
    listed = httpx.get(f"{served.url}/v1/requests", headers={"Authorization": f"Bearer {key}"}).json()
    assert title not in [r["terms"]["project_title"] for r in listed["requests"]]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#creator-pane").screenshot(path=str(SHOTS / "form-errors-creator.png"))

    page.click("#fill-example")
    expect(page.locator("#request-form .field.invalid")).to_have_count(0)


def test_the_page_speaks_chinese_too(page: Page) -> None:
    page.click(".lang button[data-lang=zh]")
    expect(page.locator("#creator-title")).to_have_text("制片方")
    expect(page.locator("#send-request")).to_have_text("发送请求")
    expect(page.locator("#f-title")).to_have_value("《霓虹港》第三集")
    page.click(".lang button[data-lang=en]")
    expect(page.locator("#creator-title")).to_have_text("Studio")


def test_the_artist_pauses_everything_and_resumes_from_the_phone(page: Page, config: dict[str, Any]) -> None:
    title = unique("Quiet Rooms")
    row, _ = approved_by_maya(page, config, title)
    expect(row.locator(".grant-state")).to_have_text("active")
    chat = page.locator("#tg-chat .tg-msg.in")

    page.locator("#tg-commands").get_by_role("button", name="/pause", exact=True).click()
    question = chat.filter(has_text="Pause every consent?").last
    question.get_by_role("button", name="⏸ Pause everything").click()

    expect(chat.filter(has_text="consent(s) paused").last).to_be_visible()
    expect(row.locator(".grant-state")).to_have_text("paused")
    expect(page.locator("#slack-feed")).to_contain_text("全部授权已暂停")  # the seed agency speaks Chinese
    shoot(page, "paused")

    page.locator("#tg-commands").get_by_role("button", name="/resume", exact=True).click()
    chat.filter(has_text="Resume your consents?").last.get_by_role("button", name="▶️ Resume").click()
    expect(chat.filter(has_text="Resumed").last).to_be_visible()
    expect(row.locator(".grant-state")).to_have_text("active")


def test_skipping_ahead_brings_the_reminder_the_lapse_and_the_expiry(
    page: Page, config: dict[str, Any]
) -> None:
    waiting = unique("Left unanswered")
    short = unique("One-week teaser")
    # Due in 25 hours: the 24-hours-before reminder falls due one hour from now.
    starts = datetime.strptime(page.input_value("#f-starts"), "%Y-%m-%dT%H:%M")
    page.fill("#f-due", (starts + timedelta(hours=25)).strftime("%Y-%m-%dT%H:%M"))
    waiting_row = send_request(page, config, to="maya", title=waiting)
    page.fill("#f-due", "")
    short_row, _ = approved_by_maya(page, config, short, window=7)
    expect(short_row).to_have_attribute("data-status", "approved")
    chat = page.locator("#tg-chat")

    page.click("[data-skip='1h']")
    expect(page.locator("#clock-offset")).to_contain_text("1h")
    reminder = chat.locator(".tg-msg.in").filter(has_text="Reminder:").filter(has_text=waiting)
    expect(reminder).to_contain_text("needs your decision")

    page.click("[data-skip='7d']")
    expect(waiting_row).to_have_attribute("data-status", "lapsed")
    expect(short_row.locator(".grant-state")).to_have_text("expired")
    expect(telegram_card(page, config, of="maya", title=waiting)).to_contain_text("Lapsed")
    ended = re.compile(f"consent for .{re.escape(short)}. has ended")
    expect(chat.locator(".tg-msg.in").filter(has_text=ended)).to_have_count(1)
    expect(board_message(page, waiting).locator(".slack-thread")).to_contain_text("请求已失效")
    expect(board_message(page, short).locator(".slack-thread")).to_contain_text("授权已到期")
    # A week passed, so the weekly usage report arrived with its chart, in Telegram and in Slack.
    expect(chat.locator(".tg-bubble img").last).to_be_visible()
    expect(page.locator("#slack-feed .slack-files img").last).to_be_visible()
    shoot(page, "after-skip-ahead")


def test_skipping_ahead_shows_the_deletion_owed_reminded_escalated_and_confirmed(
    page: Page, config: dict[str, Any], served: ServiceProcess
) -> None:
    title = unique("Dubbing voice model")
    row, card = approved_by_maya(page, config, title, ai_training=True, window=7)
    card.get_by_role("button", name="Also allow AI training of my likeness").click()
    expect(row).to_have_attribute("data-status", "approved")
    deletion = row.locator(".req-deletion")
    expect(deletion).to_have_count(0)

    page.click("[data-skip='7d']")  # the AI-training grant ends: the studio owes a deletion
    expect(row.locator(".grant-state")).to_have_text("expired")
    expect(deletion).to_contain_text("Deletion owed since")
    expect(deletion).not_to_contain_text("reminder")

    page.click("[data-skip='3d']")
    expect(deletion).to_contain_text("reminder #1 sent")
    reminded = page.locator(".toast").filter(has_text="Reminder to the studio").filter(has_text=title)
    expect(reminded).to_have_count(1)
    page.click("[data-skip='7d']")
    expect(deletion).to_contain_text("reminder #2 sent")
    page.click("[data-skip='7d']")
    expect(deletion).to_contain_text("raised to the agency")
    thread = board_message(page, title).locator(".slack-thread")
    expect(thread).to_contain_text("尚未确认删除 Maya Brooks 的肖像数据")
    shoot(page, "deletion-overdue")

    row.get_by_role("button", name="Confirm deletion").click()
    expect(deletion).to_contain_text("Deletion confirmed")
    confirmed = (
        page.locator("#tg-chat .tg-msg.in").filter(has_text="confirmed deleting").filter(has_text=title)
    )
    expect(confirmed).to_have_count(1)
    expect(thread).to_contain_text("已确认删除")
    with page.expect_download() as download:
        row.locator("a.receipt", has_text="Deletion receipt").click()
    receipt = json.loads(Path(download.value.path()).read_text())
    keys = parse_keys_document(httpx.get(f"{served.url}/.well-known/likeness-keys.json").json())
    verify_receipt(receipt, keys)
    assert receipt["type"] == "likeness-deletion-receipt"
    shoot(page, "deletion-confirmed")


def test_the_studio_sends_an_output_and_the_artist_releases_it_in_telegram(
    page: Page, config: dict[str, Any], tmp_path: Path
) -> None:
    from tests.output_samples import image

    title = unique("Poster shoot, final frame")
    row, _ = approved_by_maya(page, config, title)
    expect(row.locator(".grant-state")).to_have_text("active")

    poster = tmp_path / "poster.png"
    poster.write_bytes(image("PNG", (20, 120, 220)))
    row.locator("input.output-file").set_input_files(str(poster))
    expect(page.locator(".toast.good").filter(has_text="Sent to the artist for release.")).to_have_count(1)

    sent = page.locator("#tg-chat .tg-msg.in").filter(has_text="Generated output: poster.png")
    expect(sent.locator("img")).to_have_count(1)
    expect(sent).to_contain_text("made this with your likeness")
    shoot(page, "output")
    sent.get_by_role("button", name="✅ Release").click()
    expect(page.locator("#tg-toast")).to_have_text("Released. Thank you.")
    expect(sent.locator(".tg-btn")).to_have_count(0)
    expect(sent).to_contain_text("Released on")

"""The public grant page in a real browser (Chromium): plain verdicts in both languages, no script runs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from sandbox.service_process import ROOT
from storage.database import Database
from storage.tables import Artist
from tests.test_public_cli import Public, make_grants, public_service

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"browser tests skipped: no Chromium at {CHROMIUM}", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

SHOTS = ROOT / "test-output" / "public"


@pytest.fixture
def public(tmp_path: Path) -> Iterator[Public]:
    """A service of the test's own: the test renames every artist in its database."""
    with public_service(tmp_path) as started:
        yield started


async def _rename_artist(url: str, name: str) -> None:
    database = Database(url)
    try:
        async with database.transaction() as session:
            await session.execute(update(Artist).values(name=name))
    finally:
        await database.dispose()


def test_the_public_page_says_plainly_whether_a_use_is_allowed(public: Public) -> None:
    env, service = public
    receipts = make_grants(env)
    asyncio.run(
        _rename_artist(env["DATABASE_URL"], "Li <img src=x onerror=alert(1)><script>alert(2)</script>")
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            for locale, name, allowed, refused in [
                ("en-US", "en", "Allowed today", "Not allowed"),
                ("zh-CN", "zh", "今天允许使用", "不允许使用"),
            ]:
                context = browser.new_context(locale=locale)
                tab = context.new_page()
                dialogs: list[str] = []
                errors: list[str] = []
                tab.on("dialog", lambda dialog, seen=dialogs: (seen.append(dialog.message), dialog.dismiss()))
                tab.on("pageerror", lambda error, seen=errors: seen.append(str(error)))
                tab.goto(receipts["active"]["status_url"])
                expect(tab.locator("#verdict")).to_contain_text(allowed)
                expect(tab.locator("#verdict")).to_have_attribute("data-status", "active")
                expect(tab.locator("#verdict")).to_contain_text("<script>")  # shown as text, not run
                tab.screenshot(path=str(SHOTS / f"active-{name}.png"))
                tab.goto(receipts["revoked"]["status_url"])
                expect(tab.locator("#verdict")).to_contain_text(refused)
                expect(tab.locator("#verdict")).to_have_attribute("data-status", "revoked")
                tab.goto(f"{service.url}/g/grt_0000000000000000")
                expect(tab.locator("#verdict")).to_have_attribute("data-status", "unknown")
                assert dialogs == [] and errors == []
                context.close()
        finally:
            browser.close()

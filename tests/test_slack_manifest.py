"""The Slack app manifest in the repository matches what the app serves and needs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from bot.handlers.slack import EVENTS_PATH

MANIFEST = Path(__file__).resolve().parent.parent / "slack_app_manifest.yml"


def test_manifest_asks_for_the_scopes_and_urls_the_board_uses() -> None:
    yaml = pytest.importorskip("yaml")
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == ["chat:write", "commands", "files:write"]
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/likeness"
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    for url in (command["url"], interactivity["request_url"]):
        assert urlparse(url).scheme == "https" and urlparse(url).path == EVENTS_PATH


def test_the_many_workspaces_manifest_asks_for_what_an_install_needs() -> None:
    from bot.handlers.slack_install import REDIRECT_ROUTE
    from bot.slack_oauth import SCOPES

    yaml = pytest.importorskip("yaml")
    manifest = yaml.safe_load((MANIFEST.parent / "slack_app_manifest_oauth.yml").read_text())
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(SCOPES)
    [redirect] = manifest["oauth_config"]["redirect_urls"]
    assert urlparse(redirect).path == REDIRECT_ROUTE
    events = manifest["settings"]["event_subscriptions"]
    assert sorted(events["bot_events"]) == ["app_uninstalled", "tokens_revoked"]
    assert urlparse(events["request_url"]).path == EVENTS_PATH

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

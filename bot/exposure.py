"""Settings that would expose testing tools to the world stop start-up.

Clock control (`POST /control/clock`) can lapse every pending request and expire every grant, so
it runs only where nothing real is at stake: on a loopback address, with every platform pointed
at a simulator on this machine. The sandbox shows the demo creator's API key and lets its page
speak as any demo user, so it is for one machine unless `SANDBOX_PUBLIC=true` puts it behind a
token.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from bot.config import Settings


def is_loopback_host(host: str | None) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_loopback_url(url: str | None) -> bool:
    return url is not None and is_loopback_host(urlsplit(url).hostname)


def real_platforms(settings: Settings) -> list[str]:
    """The platform credentials that would talk to a real platform, not a simulator on this machine."""
    found = []
    if settings.telegram_bot_token is not None and not _is_loopback_url(settings.telegram_api_base_url):
        found.append("TELEGRAM_BOT_TOKEN")
    if settings.telegram_webhook_url and not _is_loopback_url(settings.telegram_webhook_url):
        found.append("TELEGRAM_WEBHOOK_URL")
    if not _is_loopback_url(settings.slack_api_base_url):
        if settings.slack_bot_token is not None:
            found.append("SLACK_BOT_TOKEN")
        if settings.slack_signing_secret is not None:
            found.append("SLACK_SIGNING_SECRET")
        if settings.slack_client_id is not None:
            found.append("SLACK_CLIENT_ID")
    return found


def startup_refusal(settings: Settings) -> str | None:
    """One line saying why these settings must not start, or None when they may."""
    if settings.clock_control:
        if not is_loopback_host(settings.http_host):
            return (
                f"CLOCK_CONTROL=true is for tests and the sandbox: it needs HTTP_HOST on loopback "
                f"(127.0.0.1), not {settings.http_host}"
            )
        real = real_platforms(settings)
        if real:
            return (
                f"CLOCK_CONTROL=true is for tests and the sandbox, not next to a real platform "
                f"({', '.join(real)}); point them at a simulator on this machine or turn clock control off"
            )
    if settings.slack_client_id is not None:
        missing = [
            name
            for name, value in (
                ("SECRETS_KEY", settings.secrets_key),
                ("SLACK_CLIENT_SECRET", settings.slack_client_secret),
                ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
            )
            if value is None
        ]
        if missing:
            return (
                f"SLACK_CLIENT_ID is set (one Slack app, many workspaces) but {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not: installs bring bot tokens that are kept "
                f"sealed with SECRETS_KEY, and Slack's requests are checked with SLACK_SIGNING_SECRET"
            )
    if settings.sandbox_enabled and not is_loopback_host(settings.http_host) and not settings.sandbox_public:
        return (
            f"the sandbox is for this machine: HTTP_HOST={settings.http_host} would show its demo API key "
            f"to the network; use 127.0.0.1, or set SANDBOX_PUBLIC=true to put it behind a token"
        )
    return None

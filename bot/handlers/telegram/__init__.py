"""The artists' Telegram bot: onboarding, deciding on cards, commands; and its place in the service.

Each handler reads one update, calls one workflow step and renders the answer (bot/render/).
Nothing is kept between updates: a button carries its request or grant id in signed callback
data, and a reason typed in one's own words answers a prompt that names its request, so a tap
or a reply works the same after a restart, on any instance.

Modules by job: `common.py` (who is tapping, how to answer), `decisions.py` (card taps, deny
reasons), `consents.py` (revoking), `commands.py` (/start, /pending, /grants, /report, /language,
/help), `pause.py` (/pause, /resume), `webhook.py` (the webhook route), `channel.py` (the
Application, its connection, `attach_telegram`).
"""

from bot.handlers.telegram.channel import TelegramChannel, attach_telegram, register_handlers
from bot.handlers.telegram.webhook import WEBHOOK_PATH

__all__ = ["WEBHOOK_PATH", "TelegramChannel", "attach_telegram", "register_handlers"]

"""An in-repo Slack Web API simulator: a real HTTP server that slack_sdk can talk to.

It keeps channels, messages, threads, ephemerals, modals and uploaded files in memory,
enforces Slack-like rate limits, injects faults on request, and plays Slack's part
towards the app: it sends signed button clicks, modal submissions and slash commands
to a configurable ``app_url``.

Typical use::

    sim = SlackSimulator(bot_token="xoxb-test", signing_secret="secret")
    sim.add_channel("C0AGENCY", "agency")
    await sim.start()
    client = AsyncWebClient(token="xoxb-test", base_url=sim.api_base_url)

Run standalone with ``python -m sandbox.slack --port 8082 --app-url ...``; the JSON
control API under ``/control/`` then drives it (see ``sandbox.slack.control``).

The modules, by job: ``world`` (state, set-up, reading, waiting), ``methods`` (auth, chat and
views methods, rate limits, faults), ``files`` (uploads and downloads), ``interactions`` (Slack's
requests to the app and what it does with the answers), ``blocks`` (reading Block Kit),
``control`` (the control API), ``server`` (serving it), ``cli`` (running it standalone).
"""

from sandbox.slack.cli import main
from sandbox.slack.interactions import AppResponse, Tamper, sign_request
from sandbox.slack.rules import FAULT_KINDS, METHOD_TIERS, TIER_LIMITS
from sandbox.slack.server import SlackSimulator

__all__ = [
    "FAULT_KINDS",
    "METHOD_TIERS",
    "TIER_LIMITS",
    "AppResponse",
    "SlackSimulator",
    "Tamper",
    "main",
    "sign_request",
]

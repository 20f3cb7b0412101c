"""Runs the simulator as a standalone server: ``python -m sandbox.slack --port 8082 ...``."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence

from sandbox.sim.server import serve_until_signalled
from sandbox.slack.server import SlackSimulator


def _pairs(specs: Sequence[str]) -> list[tuple[str, str, str | None]]:
    """``ID:NAME`` or ``ID:NAME@TEAM`` (in another workspace than the first)."""
    out = []
    for spec in specs:
        spec, _, team = spec.partition("@")
        ident, _, name = spec.partition(":")
        out.append((ident, name or ident, team or None))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the simulator until SIGINT/SIGTERM: ``python -m sandbox.slack --port 8082 ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.slack", description="Serve the Slack Web API simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--token", default=os.environ.get("SLACK_BOT_TOKEN", "xoxb-sandbox"))
    parser.add_argument(
        "--signing-secret", default=os.environ.get("SLACK_SIGNING_SECRET", "sandbox-signing-secret")
    )
    parser.add_argument(
        "--app-url", default=None, help="where to send clicks, e.g. http://127.0.0.1:8080/slack/events"
    )
    parser.add_argument("--team-id", default="T0SANDBOX")
    parser.add_argument("--bot-user-id", default="U0LIKENESS")
    parser.add_argument("--workspace", action="append", default=[], metavar="TEAM:DOMAIN")
    parser.add_argument("--channel", action="append", default=[], metavar="ID:NAME[@TEAM]")
    parser.add_argument("--user", action="append", default=[], metavar="ID:NAME[@TEAM]")
    parser.add_argument("--client-id", default="sandbox-client-id")
    parser.add_argument("--client-secret", default="sandbox-client-secret")
    parser.add_argument("--redirect-url", default=None, help="the app's OAuth Redirect URL")
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--tier-limits", action="store_true")
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> None:
    sim = SlackSimulator(
        bot_token=args.token,
        signing_secret=args.signing_secret,
        team_id=args.team_id,
        bot_user_id=args.bot_user_id,
        app_url=args.app_url,
        rate_limits_enabled=not args.no_rate_limits,
        tier_limits_enabled=args.tier_limits,
        latency=args.latency,
        client_id=args.client_id,
        client_secret=args.client_secret,
    )
    sim.redirect_url = args.redirect_url
    for team_id, domain, _ in _pairs(args.workspace):
        sim.add_workspace(team_id, domain)
    for cid, name, team in _pairs(args.channel):
        sim.add_channel(cid, name, team)
    for uid, name, member_team in _pairs(args.user):
        sim.add_user(uid, name, member_team)
    await sim.start(args.host, args.port)
    await serve_until_signalled(sim.stop, f"Slack simulator on {sim.url} (Web API base {sim.api_base_url})")

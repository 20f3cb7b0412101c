"""The composition root: builds everything from Settings, starts it and stops it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable
from importlib.metadata import entry_points

import uvicorn
from fastapi import FastAPI

from bot.adapters.webhook import WebhookSender
from bot.api import create_api
from bot.api.clock import clock_router
from bot.api.ratelimit import RateLimits
from bot.audit_cap import RefusalAuditCap
from bot.clock import Clock, OffsetClock, SystemClock
from bot.config import ConfigError, Settings
from bot.delivery import Outbox
from bot.exposure import startup_refusal
from bot.file_modes import secure_data_files
from bot.keys import KeyRing
from bot.log_format import JsonFormatter
from bot.output_files import OutputFiles
from bot.readiness import add_readiness
from bot.send_budget import DatabaseBudget
from bot.service import SANDBOX_GROUP, Extension, Service
from bot.webhook_address import WebhookPolicy
from bot.workflow import Desk, Rules
from scheduler import Schedule
from storage.database import Database

log = logging.getLogger("likeness")

__all__ = ["Service", "build_desk", "build_service", "configure_logging", "serve", "webhook_policy"]


def load_sandbox(settings: Settings, group: str = SANDBOX_GROUP) -> Extension:
    """The browser sandbox, made from settings by the extension installed under the entry point
    `group`; ConfigError when this copy has none (the sandbox is not part of the production root)."""
    found = entry_points(group=group, name="sandbox")
    if not found:
        raise ConfigError(
            f"SANDBOX is on but no sandbox is installed (entry point group {group!r}); "
            "install the project with its sandbox (make install) or set the platform tokens"
        )
    prepare: Callable[[Settings], Extension] = next(iter(found)).load()
    return prepare(settings)


def configure_logging(level: str, log_format: str = "text") -> None:
    """One-line logs, plain or JSON (LOG_FORMAT); libraries that would print URLs holding tokens
    are kept quiet."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    # httpx logs every request URL at INFO, and Telegram URLs contain the bot token.
    for noisy in ("httpx", "httpcore", "telegram.ext", "apscheduler", "aiosqlite", "slack_bolt", "slack_sdk"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def build_desk(settings: Settings, clock: Clock | None = None) -> Desk:
    """The database, clock, receipt key and rules that every workflow step uses."""
    for warning in secure_data_files(settings.data_dir, settings.database_url, settings.signing_key_path):
        log.warning("files at rest: %s", warning)
    rules = Rules(
        max_grant_days=settings.max_grant_days,
        default_decision_window=settings.default_decision_window,
        decision_reminders=tuple(settings.decision_reminders),
        grant_reminders=tuple(settings.grant_reminders),
        deletion_reminders=tuple(sorted(settings.deletion_reminders)),
        deletion_window=settings.deletion_window,
        output_quota=settings.output_quota,
    )
    return Desk(
        db=Database(settings.database_url),
        clock=clock or SystemClock(),
        signer=KeyRing(settings.signing_key_path, settings.button_secret_path),
        rules=rules,
        refusal_cap=RefusalAuditCap(per_hour=settings.refusal_audit_per_hour),
        public_url=settings.public_url,
        output_files=OutputFiles(settings.data_dir / "outputs"),
    )


def build_service(settings: Settings, clock: Clock | None = None) -> Service:
    """Builds the HTTP app and its parts; nothing connects or starts until `run_service`."""
    refusal = startup_refusal(settings)
    if refusal is not None:
        raise ConfigError(refusal)
    sandbox = None
    if settings.sandbox_enabled:
        # No platform tokens: point both channels at the in-repo simulators (sandbox/).
        sandbox = load_sandbox(settings)
        settings = sandbox.settings
    if clock is None and (settings.clock_control or settings.sandbox_enabled):
        clock = OffsetClock(settings.clock_offset)
    desk = build_desk(settings, clock)
    limits = RateLimits.of(settings.api_rate_limit, settings.address_rate_limit)
    service = Service(settings=settings, desk=desk, api=create_api(desk, limits))
    # Outputs named by URL are fetched under the same address rules as webhooks.
    service.api.state.output_fetch_policy = webhook_policy(settings)
    if desk.db.supports_skip_locked:
        # PostgreSQL may serve several instances: the platforms' limits are booked in the database.
        service.send_budget = DatabaseBudget(desk.db)
    service.on_stop.append(service.charts.close)  # stops run in reverse: this one goes last
    if sandbox is not None:
        # Before the channels, so the simulators are up when the bot and the Slack app start.
        sandbox.attach(service)
    attach_channels(service)
    add_readiness(service)
    webhooks = WebhookSender(desk, policy=webhook_policy(settings))
    service.senders.append(webhooks)
    service.on_stop.append(webhooks.close)
    outbox = Outbox(desk, service.senders, default_timezone=settings.default_timezone)
    service.outbox = outbox
    desk.on_commit.append(outbox.wake)
    service.on_start.append(outbox.start)
    service.on_stop.append(outbox.stop)  # stops are run in reverse: the outbox goes first
    schedule = Schedule(
        desk,
        sweep_interval=settings.sweep_interval,
        report_cron=settings.report_cron,
        checkpoint_interval=settings.audit_checkpoint_interval,
    )
    service.schedule = schedule
    service.on_start.append(schedule.start)
    service.on_stop.append(schedule.stop)
    if isinstance(desk.clock, OffsetClock) and (settings.clock_control or settings.sandbox_enabled):
        service.api.include_router(clock_router(desk.clock, schedule.run_soon))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for start in service.on_start:
            await start()
        settle_heap()
        try:
            yield
        finally:
            for stop in reversed(service.on_stop):
                try:
                    await stop()
                except Exception:
                    log.exception("a part failed to stop cleanly")
            await desk.db.dispose()

    service.api.router.lifespan_context = lifespan
    return service


def settle_heap() -> None:
    """Moves everything start-up allocated out of the garbage collector's sight.

    The modules, the app and its caches are some hundred thousand objects that live as long as the
    process. Left in the collector's oldest generation, every full collection walks them all: a
    pause of 100-140 ms mid-burst on the benchmark machine, the tap figure's p99. Frozen, a full
    collection walks only what was allocated since (Python's documented `gc.freeze`).
    """
    gc.collect()
    gc.freeze()


def webhook_policy(settings: Settings) -> WebhookPolicy:
    """Where creators' webhooks may go under these settings."""
    return WebhookPolicy.of(
        allow_private_webhooks=settings.allow_private_webhooks, sandbox=settings.sandbox_enabled
    )


def attach_channels(service: Service) -> None:
    """Switches on each channel whose token is set; each adds its routes, hooks and sender."""
    settings = service.settings
    if settings.telegram_bot_token is not None:
        from bot.handlers.telegram import attach_telegram

        attach_telegram(service)
    else:
        log.info("Telegram channel off: TELEGRAM_BOT_TOKEN is not set")
    if settings.slack_client_id is not None:
        from bot.handlers.slack import attach_slack
        from bot.handlers.slack_install import attach_slack_install
        from bot.slack_oauth import SlackInstalls

        installs = SlackInstalls.of(settings, service.desk)
        attach_slack(service, installs)
        attach_slack_install(service, installs)
    elif settings.slack_bot_token is not None:
        from bot.handlers.slack import attach_slack

        attach_slack(service)
    else:
        log.info("Slack channel off: SLACK_BOT_TOKEN is not set")


def bind_socket(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """Binds the listening socket ourselves, so the real port is known even when 0 was asked for.

    `reuse_port` lets several processes each listen on the port (SO_REUSEPORT: the kernel spreads
    new connections over them evenly); `listen=False` only reserves the port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        # Listen now: the "listening on" line is printed during start-up, before uvicorn starts
        # accepting, and a client that connects in between must be queued, not refused.
        sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def run_service(service: Service, sock: socket.socket | None = None, *, announce: bool = True) -> None:
    """Migrates the database, then serves HTTP (and every started part) until SIGINT or SIGTERM.

    `sock` is a listening socket to serve on (a worker of `--workers N` inherits its parent's);
    without it one is bound from the settings. `announce` prints the "listening on" line.
    """
    settings = service.settings
    await service.db.upgrade()
    if sock is None:
        sock = bind_socket(settings.http_host, settings.http_port)
    url = socket_url(sock)
    service.api.state.base_url = url

    async def say_where() -> None:
        print(f"likeness-consent listening on {url}", flush=True)
        if settings.sandbox_enabled:
            # On a public address the sandbox adds its access token here (sandbox/guard.py).
            entry = getattr(service.api.state, "sandbox_entry", "/sandbox")
            print(f"sandbox: open {url}{entry} in your browser", flush=True)
        log.info("listening on %s (docs at %s/docs)", url, url)

    if announce:
        service.on_start.append(say_where)
    config = uvicorn.Config(
        service.api, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    await server.serve(sockets=[sock])


def socket_url(sock: socket.socket) -> str:
    """The http:// address a listening socket answers on."""
    host, port = sock.getsockname()[:2]
    return f"http://{host if ':' not in host else f'[{host}]'}:{port}"


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed, else None (the standard loop)."""
    try:
        import uvloop

        return uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but the standard loop also works
        return None


def serve(settings: Settings, clock: Clock | None = None) -> None:
    """Runs `likeness serve` in a fresh event loop."""
    configure_logging(settings.log_level, settings.log_format)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(run_service(build_service(settings, clock)))

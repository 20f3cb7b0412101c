"""Settings, read once from the environment or `.env` (DESIGN §9)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Reads `5s`, `1m`, `24h`, `7d` or `2w` as a positive timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 24h or 7d")
    amount = int(match.group(1))
    if amount <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    try:
        return timedelta(seconds=amount * _UNITS[match.group(2)])
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def parse_duration_list(text: str) -> list[timedelta]:
    """Reads `24h,2h` as durations, longest first; an empty text means none."""
    parts = [p for p in (s.strip() for s in text.split(",")) if p]
    durations = sorted({parse_duration(p) for p in parts}, reverse=True)
    return durations


def format_duration(value: timedelta) -> str:
    """Writes a timedelta in the largest unit that divides it exactly."""
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*,\s*(\d+)\s*$")


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `burst` calls at once, refilled at `per_second`."""

    per_second: float
    burst: int

    def __str__(self) -> str:
        return f"{self.per_second:g}/s,{self.burst}"


def parse_rate_limit(text: str) -> RateLimit:
    """Reads `20/s,40` (rate per s, m or h, then the burst) as a RateLimit."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a rate limit like 20/s,40 (rate per s, m or h, then the burst)")
    rate = float(match.group(1)) / _UNITS[match.group(2)]
    burst = int(match.group(3))
    if rate <= 0 or burst < 1:
        raise ValueError(f"{text!r} must allow at least one call")
    return RateLimit(per_second=rate, burst=burst)


def _rate_limit_field(value: Any) -> RateLimit:
    return value if isinstance(value, RateLimit) else parse_rate_limit(str(value))


def _duration_field(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(str(value))


def _duration_list_field(value: Any) -> list[timedelta]:
    if isinstance(value, list):
        return [_duration_field(v) for v in value]
    return parse_duration_list(str(value))


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def byte_size(value: Any) -> int:
    """A size in bytes from an int or text like 1GB, 500MB, 1024 (K, M, G, T count in 1024s)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = value, ""
    else:
        match = re.fullmatch(r"\s*(\d{1,15})\s*([KMGT]?)(?:I?B)?\s*", str(value), re.IGNORECASE)
        if match is None:
            raise ValueError(f"{str(value)[:40]!r} is not a size such as 1GB, 500MB or 1073741824")
        number, unit = int(match.group(1)), match.group(2).upper()
    size = number * _SIZE_UNITS[unit]
    if size < 1:
        raise ValueError("must be at least one byte")
    return size


class Settings(BaseSettings):
    """Every setting of DESIGN §9; a bad value stops start-up naming the variable."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    database_url: str = "sqlite+aiosqlite:///./data/likeness.db"
    data_dir: Path = Path("./data")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_base_url: str = "https://slack.com/api/"
    # One Slack app installed in many workspaces (README, Connect Slack): its OAuth credentials.
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    # Where Slack's "Add to Slack" page lives; by default beside SLACK_API_BASE_URL (…/oauth/v2/authorize).
    slack_authorize_url: str | None = None
    # Fernet key sealing the bot tokens that installs bring (required with SLACK_CLIENT_ID).
    secrets_key: SecretStr | None = None

    default_timezone: str = "UTC"
    report_cron: str = "0 9 * * mon"
    sweep_interval: Annotated[timedelta, NoDecode] = timedelta(seconds=30)
    decision_reminders: Annotated[list[timedelta], NoDecode] = Field(
        default_factory=lambda: [timedelta(hours=24), timedelta(hours=2)]
    )
    grant_reminders: Annotated[list[timedelta], NoDecode] = Field(
        default_factory=lambda: [timedelta(days=7), timedelta(days=1)]
    )
    # After a grant ends with a deletion owed: remind the creator this long after it fell due,
    # and raise it to the agency once the window has passed without a confirmation.
    deletion_reminders: Annotated[list[timedelta], NoDecode] = Field(
        default_factory=lambda: [timedelta(days=7), timedelta(days=3)]  # as "3d,7d" reads
    )
    deletion_window: Annotated[timedelta, NoDecode] = timedelta(days=14)
    default_decision_window: Annotated[timedelta, NoDecode] = timedelta(hours=72)
    max_grant_days: int = Field(default=365, ge=1, le=3650)
    # Bytes of output files one creator may keep; "1GB", "500MB", "1073741824" (K/M/G are 1024-based).
    output_quota: Annotated[int, NoDecode] = 1024**3
    signing_key_file: Path | None = None
    button_secret_file: Path | None = None
    audit_checkpoint_interval: Annotated[timedelta, NoDecode] = timedelta(hours=1)
    sandbox: bool | None = None
    # Testing and sandbox only: lets POST /control/clock move the service's clock forward.
    clock_control: bool = False
    clock_offset: Annotated[timedelta, NoDecode] = timedelta(0)
    # Development only: creators' webhooks may go to loopback and private addresses, over plain http.
    allow_private_webhooks: bool = False
    # The sandbox on a non-loopback HTTP_HOST, behind a random token printed at start.
    sandbox_public: bool = False
    log_level: str = "INFO"
    # text: one plain line per record; json: one JSON object per line.
    log_format: str = "text"
    # Per instance: each process keeps its own buckets (README, Security).
    api_rate_limit: Annotated[RateLimit, NoDecode] = RateLimit(per_second=20, burst=40)
    address_rate_limit: Annotated[RateLimit, NoDecode] = RateLimit(per_second=10, burst=50)
    refusal_audit_per_hour: int = Field(default=30, ge=0, le=100_000)

    @field_validator(
        "sweep_interval",
        "default_decision_window",
        "audit_checkpoint_interval",
        "deletion_window",
        mode="before",
    )
    @classmethod
    def _read_duration(cls, value: Any) -> timedelta:
        return _duration_field(value)

    @field_validator("api_rate_limit", "address_rate_limit", mode="before")
    @classmethod
    def _read_rate_limit(cls, value: Any) -> RateLimit:
        return _rate_limit_field(value)

    @field_validator("output_quota", mode="before")
    @classmethod
    def _read_quota(cls, value: Any) -> int:
        return byte_size(value)

    @field_validator("clock_offset", mode="before")
    @classmethod
    def _read_offset(cls, value: Any) -> timedelta:
        if value in ("", "0", 0, None):
            return timedelta(0)
        return _duration_field(value)

    @field_validator("decision_reminders", "grant_reminders", "deletion_reminders", mode="before")
    @classmethod
    def _read_duration_list(cls, value: Any) -> list[timedelta]:
        return _duration_list_field(value)

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Shanghai") from None
        return value

    @field_validator("report_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a crontab expression ({error})") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", value):
            raise ValueError(f"{value!r} is not an http(s) base URL such as https://consent.example.com")
        return value

    @field_validator("secrets_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        from bot.secrets_box import check_secrets_key

        if value is not None:
            check_secrets_key(value.get_secret_value())
        return value

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value.strip().lower() not in {"text", "json"}:
            raise ValueError("must be text or json")
        return value.strip().lower()

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @property
    def sandbox_enabled(self) -> bool:
        """The sandbox runs unless a real platform token is set, or it is switched off explicitly."""
        if self.sandbox is not None:
            return self.sandbox
        tokens = (self.telegram_bot_token, self.slack_bot_token, self.slack_client_id)
        return all(token is None for token in tokens)

    @property
    def slack_oauth_authorize_url(self) -> str:
        """Slack's authorize page: SLACK_AUTHORIZE_URL, or `oauth/v2/authorize` beside the Web API."""
        if self.slack_authorize_url:
            return self.slack_authorize_url
        base = self.slack_api_base_url.rstrip("/").removesuffix("/api")
        return f"{base}/oauth/v2/authorize"

    @property
    def signing_key_path(self) -> Path:
        """Where the Ed25519 receipt key lives."""
        return self.signing_key_file or self.data_dir / "signing_key.pem"

    @property
    def button_secret_path(self) -> Path:
        """Where the secrets that sign Telegram button data live."""
        return self.button_secret_file or self.data_dir / "button_secrets.json"


class ConfigError(Exception):
    """A setting has a bad value; the message names the variable."""


def load_settings(**overrides: Any) -> Settings:
    """Reads the settings once; turns pydantic's report into one line per bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        lines = []
        for item in error.errors():
            name = str(item["loc"][0]).upper() if item["loc"] else "settings"
            message = str(item["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {message}")
        raise ConfigError("; ".join(lines)) from None

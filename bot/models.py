"""The consent desk's types: terms, requests, decisions, grants, usage; pure, no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

import pycountry
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    UrlConstraints,
    ValidationInfo,
    field_validator,
)

from bot.clean_text import (
    MAX_DESCRIPTION,
    MAX_LABELING,
    MAX_NOTE,
    MAX_TITLE,
    CleanLine,
    CleanText,
)


class Media(StrEnum):
    """Where the generated likeness will appear."""

    film = "film"
    series = "series"
    short_video = "short_video"
    advertising = "advertising"
    game = "game"
    music = "music"
    social = "social"
    other = "other"


class Likeness(StrEnum):
    """Which part of the person is used."""

    face = "face"
    voice = "voice"
    body = "body"
    name = "name"


class Sensitive(StrEnum):
    """Flags that the card shows first and in bold."""

    sexual_content = "sexual_content"
    political = "political"
    religious = "religious"
    endorsement = "endorsement"
    physical_alteration = "physical_alteration"
    real_time_interactive = "real_time_interactive"


class Policy(StrEnum):
    """Who may decide for an artist."""

    artist_only = "artist_only"
    agency_may_decide = "agency_may_decide"
    both_required = "both_required"


class Language(StrEnum):
    """The languages every artist-facing text exists in."""

    zh_hans = "zh-Hans"
    en = "en"


class RequestStatus(StrEnum):
    """Where a request stands in its lifecycle (DESIGN §4)."""

    pending = "pending"
    awaiting_cosign = "awaiting_cosign"
    approved = "approved"
    denied = "denied"
    lapsed = "lapsed"
    withdrawn = "withdrawn"


OPEN_STATUSES = frozenset({RequestStatus.pending, RequestStatus.awaiting_cosign})


class GrantStatus(StrEnum):
    """Where a grant stands: before, inside or after its window, paused by the artist, or revoked."""

    scheduled = "scheduled"
    active = "active"
    paused = "paused"
    expired = "expired"
    revoked = "revoked"


class ViolationReason(StrEnum):
    """A term that a reported use breaks; the API and every notice name these codes."""

    grant_not_active = "grant_not_active"
    grant_paused = "grant_paused"
    ai_training_not_granted = "ai_training_not_granted"
    media_not_granted = "media_not_granted"
    territory_not_granted = "territory_not_granted"
    likeness_not_granted = "likeness_not_granted"
    output_not_released = "output_not_released"


class Outcome(StrEnum):
    """What a decision says."""

    approve = "approve"
    deny = "deny"


class ActorKind(StrEnum):
    """Who acted."""

    artist = "artist"
    agency = "agency"
    creator = "creator"
    system = "system"
    admin = "admin"
    stranger = "stranger"


class ChannelKind(StrEnum):
    """Through which channel something arrived or leaves."""

    telegram = "telegram"
    slack = "slack"
    api = "api"
    webhook = "webhook"
    cli = "cli"
    system = "system"


class UsageKind(StrEnum):
    """What a creator did with a grant."""

    render = "render"
    publish = "publish"
    train = "train"
    fine_tune = "fine_tune"
    distribute = "distribute"
    other = "other"


RED_LINE_REASON = "red line"
CLOCK_SKEW = timedelta(minutes=5)
_CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies)
_TERRITORIES = frozenset(c.alpha_2 for c in pycountry.countries)


def canonical_json(value: Any) -> bytes:
    """The one byte form used for hashes and signatures: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    ).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot put {type(value).__name__} in canonical JSON")


def utc_iso(moment: datetime) -> str:
    """An aware datetime as ISO 8601 in UTC with a `Z`, the form every hash uses."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


class Compensation(BaseModel):
    """An amount in an ISO 4217 currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(description="ISO 4217 code such as CNY, USD, EUR")

    @field_validator("amount")
    @classmethod
    def _two_places(cls, value: Decimal) -> Decimal:
        # 10.5 and 10.50 are the same promise and must hash the same.
        return value.quantize(Decimal("0.01"))

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in _CURRENCIES:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code")
        return code


EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, tzinfo=UTC)


MAX_REFERENCE_URLS = 10
MAX_URL_LENGTH = 2048
# Links an artist may open from the card: https only, so no plain-text or script scheme slips in.
ReferenceUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=MAX_URL_LENGTH, allowed_schemes=["https"])]
# Ids are ours (e.g. art_0123abcd...): letters, digits, '_' and '-' only.
ID_PATTERN = r"^[A-Za-z0-9_-]+$"


def aware_utc(value: datetime) -> datetime:
    """A time given with its zone, in UTC; refused without a zone or outside 1970–9998.

    The bounds keep every time showable in any recipient's zone and every reminder offset
    computable (year 1 or 9999 would overflow there and fail a send instead of the request).
    """
    if value.tzinfo is None:
        raise ValueError("must carry a time zone, e.g. 2026-12-01T09:00:00Z")
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        moment = EARLIEST - timedelta(days=1) if value.year < 1970 else LATEST + timedelta(days=1)
    if not EARLIEST <= moment <= LATEST:
        raise ValueError("must lie between 1970 and 9998")
    return moment


class TermsIn(BaseModel):
    """What a creator asks the artist to approve, as the API receives it (DESIGN §3)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    artist_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    project_title: CleanLine = Field(min_length=1, max_length=MAX_TITLE)
    use_description: CleanText = Field(
        min_length=20, max_length=MAX_DESCRIPTION, description="What exactly will be generated, specifically."
    )
    media: list[Media] = Field(min_length=1)
    likeness: list[Likeness] = Field(min_length=1)
    territory: list[str] = Field(min_length=1, description="ISO 3166-1 alpha-2 codes, or ['worldwide']")
    starts_at: datetime
    ends_at: datetime
    ai_training: bool = Field(description="May the likeness train or fine-tune a model.")
    sensitive: list[Sensitive] = Field(default_factory=list)
    sublicensing: bool = False
    labeling: CleanText | None = Field(default=None, max_length=MAX_LABELING)
    compensation: Compensation | Literal["none"] | None = None
    decision_due_at: datetime | None = None
    reference_urls: list[ReferenceUrl] = Field(
        default_factory=list, max_length=MAX_REFERENCE_URLS, description="https links to scripts or boards"
    )
    preview_required: bool = Field(
        False, description="Each output needs the artist's release to be published."
    )

    @field_validator("media", "likeness", "sensitive")
    @classmethod
    def _sorted_unique(cls, value: list[Any]) -> list[Any]:
        return sorted(set(value))

    @field_validator("territory")
    @classmethod
    def _iso_3166(cls, value: list[str]) -> list[str]:
        return territory_codes(value)

    @field_validator("starts_at", "ends_at", "decision_due_at")
    @classmethod
    def _aware_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else aware_utc(value)

    @field_validator("ends_at")
    @classmethod
    def _ends_after_starts(cls, value: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if isinstance(starts_at, datetime) and value <= starts_at:
            raise ValueError("must be after starts_at")
        return value


class Terms(TermsIn):
    """The full terms of a request, as hashed, shown and signed."""

    creator_id: str
    decision_due_at: datetime
    # Stored terms are read back as they were accepted, also those filed before the input rules
    # above were tightened: what was signed and hashed must stay readable, never a 500.
    artist_id: str = Field(min_length=1, max_length=64)
    project_title: str = Field(min_length=1)
    use_description: str = Field(min_length=1)
    labeling: str | None = None
    reference_urls: list[AnyHttpUrl] = Field(default_factory=list)

    @classmethod
    def from_input(cls, given: TermsIn, *, creator_id: str, decision_due_at: datetime) -> Terms:
        """Completes a creator's terms with its id and the effective decision deadline."""
        data = given.model_dump() | {"creator_id": creator_id, "decision_due_at": decision_due_at}
        return cls.model_validate(data)

    def canonical(self) -> dict[str, Any]:
        """The terms as plain JSON values with UTC timestamps and sorted lists.

        `preview_required` appears only when true, so terms that never had it hash as they did.
        """
        canonical = self.model_dump(mode="json", exclude={"preview_required"}) | {
            "starts_at": utc_iso(self.starts_at),
            "ends_at": utc_iso(self.ends_at),
            "decision_due_at": utc_iso(self.decision_due_at),
        }
        if self.preview_required:
            canonical["preview_required"] = True
        return canonical

    @property
    def terms_hash(self) -> str:
        """SHA-256 of the canonical JSON of the terms."""
        return terms_hash(self.canonical())


def terms_hash(canonical_terms: dict[str, Any]) -> str:
    """SHA-256 hex of canonical terms as stored (used to re-check a receipt)."""
    return sha256_hex(canonical_json(canonical_terms))


@dataclass(frozen=True)
class FieldError:
    """One field-level complaint about input, shaped like FastAPI's validation errors."""

    field: str
    message: str
    type: str = "value_error"


def check_terms_timing(
    terms: TermsIn, *, now: datetime, max_grant_days: int, decision_due_at: datetime
) -> list[FieldError]:
    """The rules that depend on the current time and the configured maximum window."""
    errors: list[FieldError] = []
    if terms.ends_at <= now:
        errors.append(FieldError("ends_at", "must be in the future"))
    if terms.starts_at < now - CLOCK_SKEW:
        errors.append(
            FieldError("starts_at", "must not be in the past (a few minutes of clock skew are fine)")
        )
    if terms.ends_at - terms.starts_at > timedelta(days=max_grant_days):
        errors.append(FieldError("ends_at", f"the window may be at most {max_grant_days} days"))
    if decision_due_at <= now:
        errors.append(FieldError("decision_due_at", "must be in the future"))
    elif decision_due_at >= terms.ends_at:
        errors.append(FieldError("decision_due_at", "must be before ends_at"))
    return errors


class RedLines(BaseModel):
    """What an artist never accepts; a request crossing one is denied at once."""

    model_config = ConfigDict(extra="forbid")

    media: list[Media] = Field(default_factory=list)
    sensitive: list[Sensitive] = Field(default_factory=list)

    def crossed_by(self, terms: TermsIn) -> list[str]:
        """The red lines the terms cross, e.g. ['sensitive:political']."""
        crossed = [f"media:{m}" for m in terms.media if m in self.media]
        crossed += [f"sensitive:{s}" for s in terms.sensitive if s in self.sensitive]
        return crossed


WORLDWIDE = "worldwide"
USES_NEEDING_PLACE = frozenset({UsageKind.publish, UsageKind.distribute})
USES_NEEDING_LIKENESS = frozenset({UsageKind.render, UsageKind.train, UsageKind.fine_tune})
USES_NEEDING_AI_TRAINING = frozenset({UsageKind.train, UsageKind.fine_tune})


def territory_codes(value: list[str]) -> list[str]:
    """ISO 3166-1 alpha-2 codes (upper case, sorted, unique) or ['worldwide']; ValueError otherwise."""
    codes = sorted(
        {code.strip().upper() if code.strip().lower() != WORLDWIDE else WORLDWIDE for code in value}
    )
    for code in codes:
        if code != WORLDWIDE and code not in _TERRITORIES:
            raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 code or 'worldwide'")
    if WORLDWIDE in codes and len(codes) > 1:
        raise ValueError("'worldwide' already covers every territory; list it alone")
    return codes


class UsageIn(BaseModel):
    """A creator's report that it used a grant: what it did, where, in which medium, with which part."""

    model_config = ConfigDict(extra="forbid")

    kind: UsageKind
    count: int = Field(default=1, ge=1, le=1_000_000)
    occurred_at: datetime | None = None
    note: CleanText | None = Field(default=None, max_length=MAX_NOTE)
    media: Media | None = Field(default=None, description="Required for publish and distribute.")
    territory: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=250,
        description="ISO 3166-1 alpha-2 codes or ['worldwide']; required for publish and distribute.",
    )
    likeness: list[Likeness] | None = Field(
        default=None, min_length=1, description="Required for render, train and fine_tune."
    )
    output_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="The released output published (preview_required)."
    )

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return None if value is None else aware_utc(value)

    @field_validator("territory")
    @classmethod
    def _iso_3166(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else territory_codes(value)

    @field_validator("likeness")
    @classmethod
    def _sorted_unique(cls, value: list[Likeness] | None) -> list[Likeness] | None:
        return None if value is None else sorted(set(value))

    def missing_fields(self) -> list[FieldError]:
        """The fields this kind of use must state and does not (field-level 422s)."""
        errors: list[FieldError] = []
        if self.kind in USES_NEEDING_PLACE:
            for name in ("media", "territory"):
                if getattr(self, name) is None:
                    errors.append(FieldError(name, f"required for a {self.kind.value} use", "missing"))
        if self.kind in USES_NEEDING_LIKENESS and self.likeness is None:
            errors.append(FieldError("likeness", f"required for a {self.kind.value} use", "missing"))
        return errors


def judge_use(
    terms: dict[str, Any], usage: UsageIn, status: GrantStatus, released: Collection[str] = ()
) -> list[ViolationReason]:
    """Every term a use breaks, in a fixed order; empty when it lies inside all of them.

    `terms` are the canonical terms the artist approved; `status` is the grant's status when
    the use happened; `released` the SHA-256s of the grant's released outputs. A field the
    creator did not state is not judged (the API requires the ones each kind must state).
    """
    reasons: list[ViolationReason] = []
    if status is GrantStatus.paused:
        reasons.append(ViolationReason.grant_paused)
    elif status is not GrantStatus.active:
        reasons.append(ViolationReason.grant_not_active)
    if usage.kind in USES_NEEDING_AI_TRAINING and not terms.get("ai_training", False):
        reasons.append(ViolationReason.ai_training_not_granted)
    if usage.media is not None and usage.media.value not in terms.get("media", []):
        reasons.append(ViolationReason.media_not_granted)
    if usage.territory is not None:
        granted = set(terms.get("territory", []))
        if WORLDWIDE not in granted and not set(usage.territory) <= granted:
            reasons.append(ViolationReason.territory_not_granted)
    if usage.likeness is not None and not {p.value for p in usage.likeness} <= set(terms.get("likeness", [])):
        reasons.append(ViolationReason.likeness_not_granted)
    if terms.get("preview_required") and usage.kind in USES_NEEDING_PLACE:
        if usage.output_sha256 not in released:
            reasons.append(ViolationReason.output_not_released)
    return reasons


# ---------------------------------------------------------------- who acts


@dataclass(frozen=True)
class Actor:
    """Who does something: kind, their id in our records, and the channel it came through."""

    kind: ActorKind
    id: str
    channel: ChannelKind
    display: str = ""
    # The person inside an organisation who acted, e.g. the Slack member acting for an agency.
    member: str | None = None

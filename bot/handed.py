"""What delivery hands a sender for one notice: one typed value per kind of notice, read by
`bot/handover.py` from what the outbox row names. Plain data; the sender only translates it.

A sender asks for the value it expects (`await handed(CardPlace)`) once its own checks pass
(the bot is connected, the workspace has a token); the reading happens then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Generic, Protocol, TypeAlias, TypeVar

from bot.models import Language, Outcome

if TYPE_CHECKING:
    from bot.report_types import Report
    from bot.workflow.queries import GrantSummary
    from storage.queries import RequestView
    from storage.tables import Agency

# The output notices each channel shows: the file for review, a reminder, an outcome.
ARTIST_OUTPUT_NOTICES = frozenset({"output_review", "output_reminder", "output_decided"})
BOARD_OUTPUT_NOTICES = frozenset({"output_post", "output_update"})

T = TypeVar("T")
S = TypeVar("S")


class Handover(Protocol):
    """Reads what the notice is rendered from and hands it over, checked to be a `kind`; raises
    `RetryLater`, `Undeliverable` or `Skipped` when the notice is held back, given up or has
    nothing left to send."""

    async def __call__(self, kind: type[T]) -> T:
        """The notice's handed value, which must be a `kind` (of a generic kind, its class)."""
        ...


# ---------------------------------------------------------------- Telegram


@dataclass(frozen=True)
class Recipient:
    """Where and how a notice's recipient is written to."""

    chat_id: int
    language: Language
    timezone: str
    name: str


@dataclass(frozen=True)
class CardPlace:
    """A request as its artist's card shows it, and where that card was posted (if it was)."""

    view: RequestView
    posted: tuple[int, int] | None
    recipient: Recipient


@dataclass(frozen=True)
class CardEdit:
    """A card update: the request as the card now shows it, and the posted card it edits."""

    place: CardPlace
    posted: tuple[int, int]


@dataclass(frozen=True)
class ToChat(Generic[S]):
    """A chat and what a notice to it is about: to the artist, a grant asked about
    (`ToChat[GrantSummary]`), the usage report as it stands (`ToChat[Report]`), the signed
    history bundle packed now (`ToChat[bytes]`); to a studio, the title of the request its
    status update is about (`ToChat[str]`)."""

    recipient: Recipient
    subject: S


@dataclass(frozen=True)
class ShownOutput:
    """An output as either side is shown it: the file's bytes (empty when not sent), type and
    name, and the words around it."""

    output_id: str
    media_type: str
    sha256: str
    filename: str
    data: bytes
    description: str
    status: str
    release_due_at: datetime
    title: str


@dataclass(frozen=True)
class OutputToShow(ShownOutput):
    """An output in the artist's chat, with who made it."""

    recipient: Recipient
    creator_name: str


# ---------------------------------------------------------------- Slack


@dataclass(frozen=True)
class Board:
    """What one board notice needs: the request, where the board is, where its root message is,
    and which decisions the agency may make on it (the workflow's answer, shown as buttons)."""

    view: RequestView
    channel: str
    root: tuple[str, str] | None
    agency_may: tuple[Outcome, ...]


@dataclass(frozen=True)
class AgencyBoard:
    """An agency and its board channel, for a notice about the agency itself (not a request)."""

    channel: str
    agency: Agency


@dataclass(frozen=True)
class AgencyReport:
    """An agency's usage report, its usage events as a CSV file (closed by the sender), and the
    board it goes to (whose agency says the board's language)."""

    board: AgencyBoard
    report: Report
    table: IO[bytes]


@dataclass(frozen=True)
class OutputOnBoard(ShownOutput):
    """An output in the request's thread on the agency's board, with whose likeness it shows,
    whether the agency may decide it, and the reason it was rejected with (if it was)."""

    channel: str
    thread_ts: str
    reason: str | None
    artist_name: str
    agency_may_decide: bool
    agency: Agency | None


# ---------------------------------------------------------------- webhooks


@dataclass(frozen=True)
class WebhookTarget:
    """Where a creator's webhook goes and the secrets it is signed with."""

    webhook_url: str
    webhook_secret: str
    webhook_secret_previous: str | None
    webhook_secret_previous_until: datetime | None


# Every value a sender may be handed (a string: some of its parts are named for type checking only).
Handed: TypeAlias = (
    "Recipient"
    " | CardPlace"
    " | CardEdit"
    " | ToChat[GrantSummary]"
    " | ToChat[Report]"
    " | ToChat[bytes]"
    " | ToChat[str]"
    " | OutputToShow"
    " | Board"
    " | AgencyBoard"
    " | AgencyReport"
    " | OutputOnBoard"
    " | WebhookTarget"
)

"""The lifecycle: every transition as one named function and one transaction.

Each transition writes the state change, its audit event and the notices it causes (outbox
rows) together, or nothing at all; a refused one raises a `Refused` subclass and commits only
the audit event that records the refusal. One module per part:

- `errors`: the `Refused` family.
- `desk`: the `Desk` every transition works at, the transaction, the audit chain, notices.
- `parties`: agencies, artists, creators, invites, languages.
- `requests`: filing, withdrawing and nudging requests; `idempotency`: Idempotency-Key replays.
- `decisions`: the one guard of a decision, `decide` and `check_decision`.
- `grants`: grant status, creation with its receipt, revocation.
- `deletions`: the deletion confirmation a revoked (or ended AI-training) grant owes.
- `usage`: creators' usage reports and violations.
- `outputs`: files made under a grant, submitted for the artist to release or reject.
- `records`: operators list, show, change and deactivate agencies, artists and creators.
- `pause`: pausing and resuming every grant of an artist at once.
- `sweeps`: what falls due with time, in one sweep shape; `reports`: queueing usage reports.
- `channel_memory`: where cards were posted, which signed Slack requests were handled.
- `queries`: what the channel edges read (handlers and API routes never open a session).
"""

from bot.workflow import inbox, queries
from bot.workflow.artist_steps import (
    QUESTIONS,
    ask_deny_reason,
    ask_output_reason,
    ask_pause_reason,
    ask_to_revoke,
    check_own_question,
    check_revoke,
    own_grant,
    resend_card,
)
from bot.workflow.channel_memory import SLACK_REPLAY_MEMORY, remember_card, remember_slack_request
from bot.workflow.decisions import Decided, agency_outcomes, check_decision, decide
from bot.workflow.deletions import (
    DeletionAlreadyConfirmed,
    DeletionConfirmed,
    DeletionNotOwed,
    confirm_deletion,
)
from bot.workflow.desk import Desk, Rules, hash_secret, new_id, record_refusal
from bot.workflow.errors import (
    AlreadyDecided,
    Deactivated,
    GrantNotActive,
    IdempotencyConflict,
    InvalidInput,
    InviteInvalid,
    NeedsConfirmation,
    NotAllowed,
    NotFound,
    NotOpen,
    OutputExists,
    OverQuota,
    Refused,
    TermsChanged,
)
from bot.workflow.grants import grant_status_at, revoke_grant
from bot.workflow.idempotency import Idempotency
from bot.workflow.output_release import check_output_decision, decide_output
from bot.workflow.outputs import (
    OutputView,
    creators_output,
    public_releases,
    released_of_grant,
    submit_output,
)
from bot.workflow.parties import (
    INVITE_LIFETIME,
    Linked,
    NewCreator,
    add_agency,
    add_artist,
    add_creator,
    create_invite,
    redeem_invite,
    set_language,
)
from bot.workflow.pause import (
    MAX_PAUSE_REASON,
    PauseChange,
    check_may_ask_pause,
    check_may_ask_resume,
    pause_artist,
    resume_artist,
)
from bot.workflow.queries import (
    Agency,
    Artist,
    Creator,
    Decision,
    Deletion,
    Grant,
    GrantSummary,
    RequestView,
    UsageEvent,
)
from bot.workflow.records import (
    MEMBER_NOTICE,
    change_agency_member,
    deactivate_artist,
    deactivate_creator,
    list_agencies,
    list_artists,
    list_creators,
    show_agency,
    show_artist,
    show_creator,
    update_agency,
    update_artist,
    update_creator,
)
from bot.workflow.reports import LastFire, queue_due_reports, queue_report
from bot.workflow.requests import NUDGE_INTERVAL, Submitted, nudge_artist, submit_request, withdraw_request
from bot.workflow.sweeps import (
    SWEEP_BATCH,
    activate_due_grants,
    escalate_overdue_deletions,
    expire_due_grants,
    lapse_overdue_requests,
    run_sweeps,
    send_decision_reminders,
    send_deletion_reminders,
    send_grant_reminders,
)
from bot.workflow.usage import UsageRecorded, record_usage

__all__ = [
    "INVITE_LIFETIME",
    "MAX_PAUSE_REASON",
    "MEMBER_NOTICE",
    "NUDGE_INTERVAL",
    "QUESTIONS",
    "SLACK_REPLAY_MEMORY",
    "SWEEP_BATCH",
    "Agency",
    "AlreadyDecided",
    "Artist",
    "Creator",
    "Deactivated",
    "Decided",
    "Decision",
    "Deletion",
    "DeletionAlreadyConfirmed",
    "DeletionConfirmed",
    "DeletionNotOwed",
    "Desk",
    "Grant",
    "GrantNotActive",
    "GrantSummary",
    "Idempotency",
    "IdempotencyConflict",
    "InvalidInput",
    "InviteInvalid",
    "LastFire",
    "Linked",
    "NeedsConfirmation",
    "NewCreator",
    "NotAllowed",
    "NotFound",
    "NotOpen",
    "OutputExists",
    "OutputView",
    "OverQuota",
    "PauseChange",
    "Refused",
    "RequestView",
    "Rules",
    "Submitted",
    "TermsChanged",
    "UsageEvent",
    "UsageRecorded",
    "activate_due_grants",
    "add_agency",
    "add_artist",
    "add_creator",
    "agency_outcomes",
    "ask_deny_reason",
    "ask_output_reason",
    "ask_pause_reason",
    "ask_to_revoke",
    "change_agency_member",
    "check_decision",
    "check_may_ask_pause",
    "check_may_ask_resume",
    "check_output_decision",
    "check_own_question",
    "check_revoke",
    "confirm_deletion",
    "create_invite",
    "creators_output",
    "deactivate_artist",
    "deactivate_creator",
    "decide",
    "decide_output",
    "escalate_overdue_deletions",
    "expire_due_grants",
    "grant_status_at",
    "hash_secret",
    "inbox",
    "lapse_overdue_requests",
    "list_agencies",
    "list_artists",
    "list_creators",
    "new_id",
    "nudge_artist",
    "own_grant",
    "pause_artist",
    "public_releases",
    "queries",
    "queue_due_reports",
    "queue_report",
    "record_refusal",
    "record_usage",
    "redeem_invite",
    "released_of_grant",
    "remember_card",
    "remember_slack_request",
    "resend_card",
    "resume_artist",
    "revoke_grant",
    "run_sweeps",
    "send_decision_reminders",
    "send_deletion_reminders",
    "send_grant_reminders",
    "set_language",
    "show_agency",
    "show_artist",
    "show_creator",
    "submit_output",
    "submit_request",
    "update_agency",
    "update_artist",
    "update_creator",
    "withdraw_request",
]

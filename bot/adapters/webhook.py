"""Creators' status webhooks: a signed JSON POST per status change, retried through the outbox.

Signature: `Likeness-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>` with the
Unix timestamp in `Likeness-Timestamp`; for 24 h after `likeness creator webhook-secret rotate`
it is `v1=<old>,v1=<new>`; `Likeness-Event-Id` is the notice id, stable across
retries, for de-duplication on the creator's side.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime

import httpx

from bot.delivery import Delivered, Outgoing, RetryLater, Undeliverable
from bot.handed import Handover, WebhookTarget
from bot.models import ChannelKind, utc_iso
from bot.webhook_address import (
    Resolver,
    WebhookAddressRefused,
    WebhookPolicy,
    check_url,
    pinned_transport,
    refusal_of,
    system_resolver,
)
from bot.workflow import Desk

SIGNATURE_HEADER = "Likeness-Signature"
TIMESTAMP_HEADER = "Likeness-Timestamp"
EVENT_ID_HEADER = "Likeness-Event-Id"


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for a body sent at `timestamp`."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def verify_webhook(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: int = 300,
) -> bool:
    """What a creator runs on receipt: True when the signature matches and the timestamp is fresh."""
    if not timestamp.isdigit():
        return False
    moment = int(timestamp)
    if abs((now if now is not None else time.time()) - moment) > tolerance:
        return False
    # While a secret is rotated the header carries both signatures, `v1=<old>,v1=<new>`: any
    # one made with `secret` will do.
    expected = sign_webhook(secret, moment, body)
    parts = [part.strip() for part in signature.split(",")[:4]]
    return any(hmac.compare_digest(expected, part) for part in parts)


def _signatures(creator: WebhookTarget, timestamp: int, body: bytes, now: datetime) -> str:
    """The header value: the old secret's signature too while a rotation's overlap lasts."""
    current = sign_webhook(creator.webhook_secret, timestamp, body)
    until = creator.webhook_secret_previous_until
    if creator.webhook_secret_previous and until is not None and now < until:
        return f"{sign_webhook(creator.webhook_secret_previous, timestamp, body)},{current}"
    return current


class WebhookSender:
    """Sends `status` notices to the creator's webhook URL."""

    channel = ChannelKind.webhook
    # One creator's events go out in order: none while an older one waits for its retry.
    lane_slice = 10

    def __init__(
        self, desk: Desk, *, policy: WebhookPolicy | None = None, resolve: Resolver = system_resolver
    ) -> None:
        """Parameters:
        desk: for the time the events are signed at.
        policy: which URLs and addresses webhooks may go to (default: public https only).
        resolve: the name resolver whose checked answer each connection is pinned to.
        """
        self.desk = desk
        self.policy = policy or WebhookPolicy()
        # No proxies from the environment and no redirects: the checked address is the one reached.
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, connect=5.0),
            transport=pinned_transport(self.policy, resolve),
            trust_env=False,
            follow_redirects=False,
        )

    def lane(self, notice: Outgoing) -> str:
        """One creator's updates arrive in the order they happened."""
        return notice.recipient_id

    async def send(self, notice: Outgoing, handed: Handover) -> Delivered:
        """POSTs the signed event to the creator's webhook that `handed` gives; anything but 2xx
        is retried with backoff for up to 24 h."""
        creator = await handed(WebhookTarget)
        try:
            url = check_url(creator.webhook_url, self.policy)
        except WebhookAddressRefused as bad_url:
            raise Undeliverable(f"webhook refused: {bad_url}") from None
        body = json.dumps(
            {
                "id": notice.id,
                "type": notice.payload.get("event", notice.kind),
                "created_at": utc_iso(notice.created_at),
                "data": notice.payload,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode("utf-8")
        timestamp = int(self.desk.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: _signatures(creator, timestamp, body, self.desk.clock.now()),
            EVENT_ID_HEADER: notice.id,
            "User-Agent": "likeness-consent-webhooks/1",
        }
        try:
            answer = await self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            refused = refusal_of(error)
            if refused is not None:
                raise Undeliverable(f"webhook refused: {refused}") from None
            raise RetryLater(f"webhook unreachable: {type(error).__name__}") from None
        if 200 <= answer.status_code < 300:
            return Delivered()
        after = answer.headers.get("Retry-After")
        raise RetryLater(
            f"webhook answered {answer.status_code}", float(after) if after and after.isdigit() else None
        )

    async def close(self) -> None:
        """Closes the connection pool."""
        await self.client.aclose()

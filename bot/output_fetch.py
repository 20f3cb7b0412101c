"""Fetching an output a creator names by URL (files too large to upload): through the same
address guard as webhooks (bot/webhook_address.py: public addresses only, the checked address
pinned for the connection, no redirects), streamed with its type's size cap."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from bot.output_files import FileRefused, TooLarge
from bot.webhook_address import WebhookAddressRefused, WebhookPolicy, check_url, pinned_transport, refusal_of

FETCH_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_CHUNK = 64 * 1024


class FetchRefused(FileRefused):
    """The URL may not be fetched (its form or address), or fetching it failed (422)."""

    code = "fetch_failed"
    status = 422


async def fetch_chunks(url: str, policy: WebhookPolicy, limit: int) -> AsyncIterator[bytes]:
    """The body at `url`, chunk by chunk; FetchRefused for a refused address, a redirect, a
    non-200 answer or a network failure, TooLarge once a declared length passes `limit`."""
    try:
        check_url(url, policy)
    except WebhookAddressRefused as why:
        raise FetchRefused(str(why).replace("webhook", "output")) from None
    async with httpx.AsyncClient(
        transport=pinned_transport(policy), timeout=FETCH_TIMEOUT, follow_redirects=False
    ) as client:
        try:
            async with client.stream("GET", url, headers={"Accept": "*/*"}) as response:
                if response.status_code != 200:
                    raise FetchRefused(
                        f"the URL answered {response.status_code}, not 200 (redirects are not followed)"
                    )
                length = response.headers.get("content-length", "")
                if length.isdigit() and int(length) > limit:
                    raise TooLarge(f"the file at the URL is {length} bytes; at most {limit} are accepted")
                async for chunk in response.aiter_bytes(_CHUNK):
                    yield chunk
        except httpx.HTTPError as error:
            refused = refusal_of(error)
            if refused is not None:
                raise FetchRefused(str(refused).replace("webhook", "output")) from None
            raise FetchRefused(f"the URL could not be fetched ({type(error).__name__})") from None

"""Rate limits, kept per instance: per API key, and per client address on public routes and on
calls that fail authentication.

Each key gets an `aiolimiter.AsyncLimiter` (a leaky bucket of `burst` calls draining at the
configured rate), asked with `has_capacity()` so that nobody waits: over the limit is a 429
with `Retry-After`. Buckets live in a bounded LRU map; an evicted bucket starts again full.
Authenticated traffic from Slack and Telegram is never limited by address (their own servers
send it), only failed authentications are.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass

from aiolimiter import AsyncLimiter
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bot import metrics
from bot.config import RateLimit

MAX_KEYS = 10_000
PUBLIC_PATHS = ("/healthz", "/metrics", "/.well-known/", "/docs", "/redoc", "/openapi.json")


class KeyedLimiter:
    """One leaky bucket per key; the least recently used key is forgotten past `max_keys`."""

    def __init__(self, limit: RateLimit, *, max_keys: int = MAX_KEYS) -> None:
        """Buckets of `limit.burst` calls, draining at `limit.per_second`.

        Parameters:
            limit: the rate and the burst.
            max_keys: how many keys are remembered at most.
        """
        self.limit = limit
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, AsyncLimiter] = OrderedDict()

    def _bucket(self, key: str) -> AsyncLimiter:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = AsyncLimiter(self.limit.burst, self.limit.burst / self.limit.per_second)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def has_capacity(self, key: str) -> bool:
        """True when `key` may make one more call now (nothing is taken)."""
        return self._bucket(key).has_capacity()

    async def take(self, key: str) -> bool:
        """Takes one call from `key`'s bucket; False (and nothing taken) when it is empty."""
        bucket = self._bucket(key)
        if not bucket.has_capacity():
            return False
        await bucket.acquire()  # there is capacity, so this returns at once
        return True

    def retry_after(self) -> int:
        """Whole seconds until one call's worth has drained (what Retry-After says)."""
        return max(1, math.ceil(1 / self.limit.per_second))

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass
class RateLimits:
    """The service's limits: per API key, and per client address."""

    api_key: KeyedLimiter
    address: KeyedLimiter

    @classmethod
    def of(cls, api: RateLimit, address: RateLimit) -> RateLimits:
        """Limits from the two settings API_RATE_LIMIT and ADDRESS_RATE_LIMIT."""
        return cls(KeyedLimiter(api), KeyedLimiter(address))

    @classmethod
    def default(cls) -> RateLimits:
        """The defaults of Settings."""
        return cls.of(RateLimit(20, 40), RateLimit(10, 50))


def client_address(scope: Scope) -> str:
    """The caller's address as the limits key it: IPv4 alone, IPv6 by its /64 (one site's block)."""
    client = scope.get("client")
    host = str(client[0]) if client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def limits_of(request: Request) -> RateLimits:
    """The limits the application was built with."""
    limits: RateLimits = request.app.state.limits
    return limits


def too_many(scope_name: str, retry_after: int) -> JSONResponse:
    """The 429 answer, in the API's error shape."""
    metrics.RATE_LIMITED.labels(scope=scope_name).inc()
    return JSONResponse(
        {"detail": f"too many requests; retry after {retry_after} s", "code": "rate_limited"},
        status_code=429,
        headers={"Retry-After": str(retry_after)},
    )


class RateLimited(Exception):
    """Raised inside a route or dependency; answered as `too_many`."""

    def __init__(self, scope_name: str, retry_after: int) -> None:
        super().__init__(f"rate limited ({scope_name})")
        self.scope_name = scope_name
        self.retry_after = retry_after


def rate_limited_answer(_request: Request, error: Exception) -> JSONResponse:
    """The exception handler for RateLimited."""
    assert isinstance(error, RateLimited)
    return too_many(error.scope_name, error.retry_after)


def address_exhausted(request: Request) -> bool:
    """True when the caller's address has spent its budget (on public calls or failed authentications)."""
    return not limits_of(request).address.has_capacity(client_address(request.scope))


async def refuse_unauthenticated(request: Request, kind: str, detail: str) -> RateLimited | None:
    """Counts a failed authentication and charges the caller's address; a RateLimited when it is over.

    Nothing is written to the database: such a caller is no one the service knows.
    """
    metrics.auth_failed(kind, detail)
    limits = limits_of(request)
    if await limits.address.take(client_address(request.scope)):
        return None
    return RateLimited("address", limits.address.retry_after())


class PublicRouteLimit:
    """Charges every call to a public route to its client address; 429 once the address is over."""

    def __init__(self, app: ASGIApp, *, limits: RateLimits, prefixes: tuple[str, ...] = PUBLIC_PATHS) -> None:
        """Wraps `app`.

        Parameters:
            app: the ASGI app to protect.
            limits: the service's limits; the address limiter is used.
            prefixes: the paths (or path prefixes ending in /) that need no authentication.
        """
        self.app = app
        self.limits = limits
        self.prefixes = prefixes

    def _public(self, path: str) -> bool:
        return any(path == p or (p.endswith("/") and path.startswith(p)) for p in self.prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self._public(scope["path"])
            and not await self.limits.address.take(client_address(scope))
        ):
            await too_many("address", self.limits.address.retry_after())(scope, receive, send)
            return
        await self.app(scope, receive, send)

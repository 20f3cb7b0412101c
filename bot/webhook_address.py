"""Where a creator's webhook may point: a public address, over https.

A webhook URL is chosen by a studio, so it must not become a way into the machine or its
network (cloud metadata at 169.254.169.254, a database on 10.0.0.5, the service's own loopback
routes). The URL is checked when the creator is added, and again on every connection, because
DNS can change in between: the connection goes to exactly the address that was checked (the
name is resolved once, inside the transport, and the socket is opened to that IP while TLS and
the Host header keep the name).

`ALLOW_PRIVATE_WEBHOOKS=true` lifts the address rule (and allows plain http) for development;
the sandbox allows plain http.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import certifi
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class WebhookAddressRefused(httpcore.ConnectError):
    """The webhook's URL or the address its host resolves to is not allowed; nothing was sent."""


@dataclass(frozen=True)
class WebhookPolicy:
    """What a webhook URL may be.

    Parameters:
        allow_private: any address, loopback and private networks included (development only).
        allow_http: plain http besides https (the sandbox, or with `allow_private`).
    """

    allow_private: bool = False
    allow_http: bool = False

    @classmethod
    def of(cls, *, allow_private_webhooks: bool, sandbox: bool) -> WebhookPolicy:
        """The policy for the service's settings."""
        return cls(allow_private=allow_private_webhooks, allow_http=allow_private_webhooks or sandbox)


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped or NAT64 IPv6 address, else the address itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_problem(ip: IPAddress) -> str | None:
    """Why a webhook may not connect to this address (e.g. "a loopback address"); None when public."""
    ip = _embedded_ipv4(ip)
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a shared (CGNAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a reserved address"
    return None


def check_url(url: str, policy: WebhookPolicy) -> httpx.URL:
    """The URL parsed, when its form is allowed (scheme, host, no credentials); else refused."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise WebhookAddressRefused(f"{url!r} is not a URL") from None
    schemes = {"https", "http"} if policy.allow_http else {"https"}
    if parsed.scheme not in schemes or not parsed.host:
        wanted = "an http(s)" if policy.allow_http else "an https"
        raise WebhookAddressRefused(f"{url!r} is not {wanted} URL")
    if parsed.userinfo:
        raise WebhookAddressRefused("a webhook URL must not carry a user name or password")
    return parsed


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for the host, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def checked_address(host: str, port: int, policy: WebhookPolicy, resolve: Resolver) -> str:
    """The one address to connect to: the host itself when it is an IP, else its first resolved address.

    Every resolved address must pass, so a name that answers with one public and one private
    address is refused. Raises WebhookAddressRefused; a name that does not resolve raises OSError.
    """
    literal = _literal(host)
    addresses = [str(literal)] if literal is not None else await resolve(host, port)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    if not policy.allow_private:
        for address in addresses:
            ip = _literal(address.split("%", 1)[0])
            problem = "not an IP address" if ip is None else address_problem(ip)
            if problem is not None:
                raise WebhookAddressRefused(
                    f"{host} resolves to {address}, {problem}; webhooks go to public hosts"
                )
    return addresses[0]


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens each connection to the address just checked for its host; TLS still uses the name."""

    def __init__(self, policy: WebhookPolicy, resolve: Resolver) -> None:
        self._policy = policy
        self._resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolves and checks the host once, then connects to that address."""
        try:
            address = await checked_address(host, port, self._policy, self._resolve)
        except WebhookAddressRefused:
            raise
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
        return await self._inner.connect_tcp(
            address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Webhooks never go to a local socket."""
        raise WebhookAddressRefused("webhooks never go to a local socket")

    async def sleep(self, seconds: float) -> None:
        """Waits, as the connection pool asks."""
        await self._inner.sleep(seconds)


def pinned_transport(policy: WebhookPolicy, resolve: Resolver = system_resolver) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes to a checked address (see the module docs)."""
    transport = httpx.AsyncHTTPTransport()
    limits = httpx.Limits()
    # httpx takes no network backend, so its pool is replaced by an equal one that has ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl.create_default_context(cafile=certifi.where()),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_PinnedBackend(policy, resolve),
    )
    return transport


def refusal_of(error: BaseException) -> WebhookAddressRefused | None:
    """The address refusal behind an httpx error, if that is what it was."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, WebhookAddressRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None

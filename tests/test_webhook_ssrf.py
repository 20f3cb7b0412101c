"""Creators' webhooks cannot reach inside: every address class is refused when the creator is
added and again at every send, and the connection goes to the address that was checked. No
internet: names are mapped through a resolver the test controls (or are `localhost`)."""

from __future__ import annotations

import ipaddress
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import workflow
from bot.adapters.webhook import WebhookSender
from bot.delivery import Delivered, Outgoing, Undeliverable, deliver
from bot.models import ChannelKind
from bot.webhook_address import (
    WebhookAddressRefused,
    WebhookPolicy,
    address_problem,
    check_url,
    checked_address,
    system_resolver,
)
from bot.workflow import Desk
from sandbox.service_process import run_cli, service_env
from tests.test_workflow import row_counts
from tests.webhook_receiver import LOOPBACK_HOOKS, WebhookReceiver

STRICT = WebhookPolicy()


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),  # RFC 4193
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("100.64.0.1", "CGNAT"),
        ("100.100.100.200", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("240.0.0.1", "reserved"),
    ],
)
def test_each_inside_address_class_is_refused(address: str, problem: str) -> None:
    found = address_problem(ipaddress.ip_address(address))
    assert found is not None and problem in found


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "policy", "allowed"),
    [
        ("https://hooks.studio.example/in", STRICT, True),
        ("http://hooks.studio.example/in", STRICT, False),
        ("http://hooks.studio.example/in", WebhookPolicy(allow_http=True), True),
        ("https://user:pw@hooks.studio.example/in", STRICT, False),
        ("ftp://hooks.studio.example/in", LOOPBACK_HOOKS, False),
        ("https:///in", STRICT, False),
        ("not a url", STRICT, False),
    ],
)
def test_webhook_urls_are_https_unless_allowed(url: str, policy: WebhookPolicy, allowed: bool) -> None:
    if allowed:
        check_url(url, policy)
    else:
        with pytest.raises(WebhookAddressRefused):
            check_url(url, policy)


def resolver(table: dict[str, list[str]], calls: list[str] | None = None):  # type: ignore[no-untyped-def]
    """A resolver that knows only `table`, recording each name it is asked."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError(f"{host} is unknown")
        return table[host]

    return resolve


async def test_a_name_is_refused_when_any_of_its_addresses_is_inside() -> None:
    resolve = resolver({"hooks.studio.test": ["93.184.216.34", "10.0.0.5"]})
    with pytest.raises(WebhookAddressRefused, match=r"10\.0\.0\.5, a private address"):
        await checked_address("hooks.studio.test", 443, STRICT, resolve)
    public = resolver({"hooks.studio.test": ["93.184.216.34"]})
    assert await checked_address("hooks.studio.test", 443, STRICT, public) == "93.184.216.34"


async def test_localhost_resolves_to_loopback_and_is_refused() -> None:
    with pytest.raises(WebhookAddressRefused, match="loopback"):
        await checked_address("localhost", 443, STRICT, system_resolver)


# ---------------------------------------------------------------- at send time, both databases


async def status_notice(desk: Desk, webhook_url: str) -> Outgoing:
    made = await workflow.add_creator(desk, name="Dream Studio", webhook_url=webhook_url)
    return Outgoing(
        id="ntc_ssrf",
        channel=ChannelKind.webhook,
        recipient_kind="creator",
        recipient_id=made.creator.id,
        kind="status",
        request_id=None,
        grant_id=None,
        payload={"event": "request.submitted"},
        attempts=0,
        created_at=datetime.now(UTC),
    )


async def test_a_loopback_webhook_is_undeliverable_by_default_and_nothing_is_sent(
    desk: Desk, receiver: WebhookReceiver
) -> None:
    notice = await status_notice(desk, receiver.url)
    for policy in (STRICT, WebhookPolicy(allow_http=True)):
        sender = WebhookSender(desk, policy=policy)
        try:
            before = await row_counts(desk)
            with pytest.raises(Undeliverable, match="webhook refused"):
                await deliver(desk, sender, notice)
            assert await row_counts(desk) == before
        finally:
            await sender.close()
    assert receiver.arrivals == 0


async def test_a_name_that_resolves_inside_is_refused_at_send_time(
    desk: Desk, receiver: WebhookReceiver
) -> None:
    """The creator was added while the name looked public; by the send it points at loopback."""
    port = receiver.url.split(":")[2].split("/")[0]
    notice = await status_notice(desk, f"http://hooks.studio.test:{port}/hook")
    calls: list[str] = []
    rebound = resolver({"hooks.studio.test": ["127.0.0.1"]}, calls)
    sender = WebhookSender(desk, policy=WebhookPolicy(allow_http=True), resolve=rebound)
    try:
        with pytest.raises(Undeliverable, match=r"hooks\.studio\.test resolves to 127\.0\.0\.1"):
            await deliver(desk, sender, notice)
    finally:
        await sender.close()
    assert receiver.arrivals == 0
    assert calls == ["hooks.studio.test"]


async def test_the_connection_goes_to_the_checked_address_with_the_name_kept(
    desk: Desk, receiver: WebhookReceiver
) -> None:
    """`hooks.studio.test` exists only in the test's resolver: reaching the receiver proves the
    socket went to the address the check saw, resolved once, and the Host header kept the name."""
    port = receiver.url.split(":")[2].split("/")[0]
    notice = await status_notice(desk, f"http://hooks.studio.test:{port}/hook")
    calls: list[str] = []
    sender = WebhookSender(
        desk, policy=LOOPBACK_HOOKS, resolve=resolver({"hooks.studio.test": ["127.0.0.1"]}, calls)
    )
    try:
        assert await deliver(desk, sender, notice) == Delivered()
    finally:
        await sender.close()
    assert calls == ["hooks.studio.test"]
    assert receiver.received[0].headers["Host"] == f"hooks.studio.test:{port}"


# ---------------------------------------------------------------- the CLI


def creator_rows(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM creators").fetchone()[0])


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://169.254.169.254/latest/meta-data/", "not an https URL"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://localhost/hook", "loopback"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://100.64.1.1/hook", "CGNAT"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://0.0.0.0/hook", "unspecified"),
    ],
)
def test_the_cli_refuses_inside_webhooks_in_one_line(cli_folder: Path, url: str, words: str) -> None:
    env = service_env(cli_folder, ALLOW_PRIVATE_WEBHOOKS="false")
    done = run_cli(env, cli_folder, "creator", "add", "--name", "Studio", "--webhook-url", url)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --webhook-url") and words in lines[0]
    assert "Traceback" not in done.stderr
    assert creator_rows(cli_folder / "data" / "likeness.db") == 0


def test_the_cli_takes_a_loopback_webhook_when_private_webhooks_are_allowed(tmp_path: Path) -> None:
    env = service_env(tmp_path, ALLOW_PRIVATE_WEBHOOKS="true")
    done = run_cli(
        env, tmp_path, "creator", "add", "--name", "Studio", "--webhook-url", "http://127.0.0.1:9/hook"
    )
    assert done.returncode == 0, done.stderr
    assert creator_rows(tmp_path / "data" / "likeness.db") == 1

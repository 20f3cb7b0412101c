"""The `exposed` service: one per test module, started with every secret set."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from sandbox.pg_server import free_port
from tests.faults.exposed import Exposed
from tests.faults.world import (
    TELEGRAM_WEBHOOK_SECRET,
    close_world,
    open_world,
)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def exposed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Exposed]:
    port = free_port()  # Telegram needs the webhook's address before the service starts
    world = await open_world(
        tmp_path_factory.mktemp("faults-exposed"),
        HTTP_PORT=str(port),
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
        TELEGRAM_WEBHOOK_SECRET=TELEGRAM_WEBHOOK_SECRET,
        SWEEP_INTERVAL="1h",
        LOG_LEVEL="DEBUG",  # the most the service ever logs: the secret scan reads all of it
    )
    try:
        boards = [await world.board(f"Storm Agency {n}") for n in range(6)]
        artists = [await world.artist(f"Storm Artist {n}", boards[n % 6]) for n in range(12)]
        studio = await world.creator("Storm Studio")
        rival = await world.creator("Rival Studio")
        await world.start()
        yield Exposed(world, artists, studio, rival)
    finally:
        await close_world(world)

"""Telegram fan-out: 1,000 cards to 1,000 artists through the Bot API simulator's flood limits.

The simulator enforces Telegram's limits (30 messages/s per bot, 1/s per private chat with a
burst of 3) and answers 429 to any call that breaks them. The cards are queued before the
service starts; the rate is taken from the simulator's own call times, from the first card's
sendMessage to the last, so start-up is not counted. The reference is the allowed rate itself.
"""

from __future__ import annotations

import asyncio
import sqlite3

from bench._telegram import Crowd, end_crowd, make_crowd, ok_calls, poll_until
from bench.figures import Figure

CARDS = 1_000
ALLOWED = 30.0  # messages per second per bot: the simulator's (and Telegram's) limit
GOAL = 0.9


def _notice_states(crowd: Crowd) -> dict[str, int]:
    with sqlite3.connect(crowd.database) as db:
        rows = db.execute("SELECT status, count(*) FROM notices WHERE kind = 'card' GROUP BY status")
        return {status: count for status, count in rows}


async def _measure() -> dict[str, float]:
    crowd = await make_crowd(CARDS, prefix="bench-fanout-")
    try:
        sim = crowd.sim
        await crowd.start()
        await poll_until(lambda: ok_calls(sim, "sendMessage") >= CARDS, timeout=CARDS / ALLOWED * 4 + 60)
        await asyncio.sleep(2.0)  # the outbox marks the last sends; a duplicate would show up now
        await crowd.stop()
        calls = [c for c in sim.calls("sendMessage") if c["ok"]]
        times = sorted(float(c["time"]) for c in calls)  # type: ignore[arg-type]
        delivered = crowd.delivered_cards()
        states = _notice_states(crowd)
        refused = [c for c in sim.calls("sendMessage") if not c["ok"]]
        busiest_chat = max(sim.chat_stats(card.user_id)["max_in_1s"] for card in crowd.cards)
    finally:
        await end_crowd(crowd)
    span = times[-1] - times[0]
    return {
        "rate": (len(times) - 1) / span,
        "span": span,
        "sent": len(calls),
        "429": float(sim.rate_limited_count),
        "refused": len(refused),
        "lost": CARDS - len(delivered),
        "duplicates": sum(len(messages) - 1 for messages in delivered.values()),
        "not_marked_sent": CARDS - states.get("sent", 0),
        "busiest_chat": busiest_chat,
    }


def run() -> list[Figure]:
    """Sends the cards; reports the achieved rate against the allowed one, 429s and losses."""
    got = asyncio.run(_measure())
    rate = got["rate"]
    detail = (
        f"{got['sent']:.0f} cards in {got['span']:.1f} s (ideal {CARDS / ALLOWED:.1f} s); "
        f"{got['duplicates']:.0f} duplicates; {got['not_marked_sent']:.0f} notices not marked sent; "
        f"{got['refused']:.0f} sendMessage calls refused; at most {got['busiest_chat']:.0f} message(s) "
        "in any chat within 1 s"
    )
    return [
        Figure(
            "Telegram fan-out rate",
            rate,
            "msg/s",
            "allowed rate (simulator's per-bot limit)",
            ALLOWED,
            goal=f"ratio ≥ {GOAL}",
            met=rate / ALLOWED >= GOAL,
            note=detail,
        ),
        Figure(
            "fan-out 429s provoked",
            got["429"],
            "answers",
            "cards sent",
            float(CARDS),
            goal="0",
            met=got["429"] == 0,
        ),
        Figure(
            "fan-out cards lost",
            got["lost"],
            "cards",
            "cards queued",
            float(CARDS),
            goal="0",
            met=got["lost"] == 0,
        ),
    ]

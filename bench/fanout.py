"""Telegram fan-out: 1,000 cards to 1,000 artists through the Bot API simulator's flood limits.

The simulator enforces Telegram's limits (30 messages/s per bot, 1/s per private chat with a
burst of 3) and answers 429 to any call that breaks them. The cards are queued before the
service starts; the rate is taken from the simulator's own call times, from the first card's
sendMessage to the last, so start-up is not counted. The reference is the allowed rate itself.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass

from bench._telegram import Crowd, end_crowd, make_crowd, ok_calls, poll_until
from bench.figures import Figure

CARDS = 1_000
ALLOWED = 30.0  # messages per second per bot: the simulator's (and Telegram's) limit
GOAL = 0.9


@dataclass(frozen=True)
class Fanout:
    """The crowd's cards as the simulator recorded their sendMessage calls."""

    queued: int
    sent: int
    span: float
    rate: float
    rate_limited: int
    lost: int
    duplicates: int
    busiest_chat: int

    @classmethod
    def of(cls, crowd: Crowd) -> Fanout:
        """The cards' sends so far: the rate from the first to the last, 429s, cards lost or sent twice."""
        sim = crowd.sim
        calls = [c for c in sim.calls("sendMessage") if c["ok"]]
        times = sorted(float(c["time"]) for c in calls)  # type: ignore[arg-type]
        delivered = crowd.delivered_cards()
        span = times[-1] - times[0]
        return cls(
            queued=len(crowd.cards),
            sent=len(calls),
            span=span,
            rate=(len(times) - 1) / span,
            rate_limited=sim.rate_limited_count,
            lost=len(crowd.cards) - len(delivered),
            duplicates=sum(len(messages) - 1 for messages in delivered.values()),
            busiest_chat=max(sim.chat_stats(card.user_id)["max_in_1s"] for card in crowd.cards),
        )


def fanout_figures(fan: Fanout, note: str, where: str = "") -> list[Figure]:
    """The rate against the allowed one, the 429s provoked and the cards lost; `where` ends each name."""
    counts = (
        ("429s provoked", fan.rate_limited, "answers", "cards sent"),
        ("cards lost", fan.lost, "cards", "cards queued"),
    )
    return [
        Figure(
            f"Telegram fan-out rate{where}",
            fan.rate,
            "msg/s",
            "allowed rate (simulator's per-bot limit)",
            ALLOWED,
            goal=f"ratio ≥ {GOAL}",
            met=fan.rate / ALLOWED >= GOAL,
            note=note,
        ),
        *(
            Figure(
                f"fan-out {name}{where}",
                float(value),
                unit,
                reference,
                float(fan.queued),
                goal="0",
                met=value == 0,
            )
            for name, value, unit, reference in counts
        ),
    ]


def _notice_states(crowd: Crowd) -> dict[str, int]:
    with sqlite3.connect(crowd.database) as db:
        rows = db.execute("SELECT status, count(*) FROM notices WHERE kind = 'card' GROUP BY status")
        return {status: count for status, count in rows}


async def _measure() -> tuple[Fanout, int, int]:
    """The fan-out, the sendMessage calls refused, and the cards whose notice is not marked sent."""
    crowd = await make_crowd(CARDS, prefix="bench-fanout-")
    try:
        sim = crowd.sim
        await crowd.start()
        await poll_until(lambda: ok_calls(sim, "sendMessage") >= CARDS, timeout=CARDS / ALLOWED * 4 + 60)
        await asyncio.sleep(2.0)  # the outbox marks the last sends; a duplicate would show up now
        await crowd.stop()
        fan = Fanout.of(crowd)
        states = _notice_states(crowd)
        refused = [c for c in sim.calls("sendMessage") if not c["ok"]]
    finally:
        await end_crowd(crowd)
    return fan, len(refused), CARDS - states.get("sent", 0)


def run() -> list[Figure]:
    """Sends the cards; reports the achieved rate against the allowed one, 429s and losses."""
    fan, refused, not_marked_sent = asyncio.run(_measure())
    detail = (
        f"{fan.sent:.0f} cards in {fan.span:.1f} s (ideal {CARDS / ALLOWED:.1f} s); "
        f"{fan.duplicates:.0f} duplicates; {not_marked_sent:.0f} notices not marked sent; "
        f"{refused:.0f} sendMessage calls refused; at most {fan.busiest_chat:.0f} message(s) "
        "in any chat within 1 s"
    )
    return fanout_figures(fan, detail)

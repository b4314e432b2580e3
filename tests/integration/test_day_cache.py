"""serve keeps agents' `today` day-hash sums between requests until the next store commit
(`stream.readers.sums.DayCache`): the same answers as a read, none kept across a commit, none
kept when commits cannot be seen, and none for an earlier window end."""

from __future__ import annotations

import asyncio
import time
from zoneinfo import ZoneInfo

from stream.kpi.windows import HOUR_MS, MINUTE_MS, Range, resolve_window
from stream.readers.sums import DayCache, window_sums
from stream.store.commit import CommitBatch
from stream.store.redis_store import Store

TZ = ZoneInfo("UTC")
NOW = int(time.time() * 1000) // HOUR_MS * HOUR_MS + 30 * MINUTE_MS + 5_000
COUNTERS = ("dialed", "talk_ms")


def test_day_sums_are_kept_until_the_next_commit(redis_url: str) -> None:
    async def run() -> None:
        store = Store(redis_url, prefix="daycache:", tz=TZ)
        generation: list[int | None] = [1]
        store.day_cache = DayCache(lambda: generation[0])  # type: ignore[attr-defined]
        minute = NOW - NOW % MINUTE_MS - 5 * MINUTE_MS
        try:
            await store.commit(CommitBatch(counters={("agent:a1", minute): {"dialed": 2, "talk_ms": 7}},
                                           notify=False), NOW)
            today = {"today": resolve_window("today", NOW, TZ)}
            first = await window_sums(store, ["agent:a1"], today, COUNTERS)
            assert first["agent:a1"]["today"] == {"dialed": 2.0, "talk_ms": 7.0}
            first["agent:a1"]["today"]["dialed"] += 100  # a caller adding open time: not kept
            # a commit not yet seen (no new generation): the kept sums answer
            await store.commit(CommitBatch(counters={("agent:a1", minute): {"dialed": 1}}, notify=False), NOW)
            kept = await window_sums(store, ["agent:a1"], today, COUNTERS)
            assert kept["agent:a1"]["today"]["dialed"] == 2.0
            later = {"today": Range(today["today"].start, today["today"].end + MINUTE_MS)}
            assert (await window_sums(store, ["agent:a1"], later, COUNTERS))["agent:a1"]["today"]["dialed"] == 2.0
            earlier = {"today": Range(today["today"].start, minute + MINUTE_MS)}  # the bound not shown
            assert (await window_sums(store, ["agent:a1"], earlier, COUNTERS))["agent:a1"]["today"]["dialed"] == 3.0
            generation[0] = 2  # the commit seen: read again
            assert (await window_sums(store, ["agent:a1"], today, COUNTERS))["agent:a1"]["today"]["dialed"] == 3.0
            generation[0] = None  # no subscription: nothing kept, every request reads
            await store.commit(CommitBatch(counters={("agent:a1", minute): {"dialed": 1}}, notify=False), NOW)
            assert (await window_sums(store, ["agent:a1"], today, COUNTERS))["agent:a1"]["today"]["dialed"] == 4.0
        finally:
            await store.close()
    asyncio.run(run())

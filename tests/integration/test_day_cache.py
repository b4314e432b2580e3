"""serve keeps agents' `today` day-hash sums between requests until a store commit writes the
agent (`stream.readers.sums.DayCache`): the same answers as a read; kept across a commit of other
scopes, not across one of the scope or one that names none (a team move, an older worker's
message); none kept when commits cannot be seen, and none for an earlier window end. The names
come from the commit's real `updates` message, heard through serve's `UpdateHub`."""

from __future__ import annotations

import asyncio
import time
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from stream.kpi.config_file import ApiConfig
from stream.kpi.windows import HOUR_MS, MINUTE_MS, Range, resolve_window
from stream.readers.sums import DayCache, window_sums
from stream.readers.updates import UpdateHub, scopes_named
from stream.state.batch import TeamMove
from stream.store.commit import CommitBatch, updates_message
from stream.store.redis_store import Store

TZ = ZoneInfo("UTC")
NOW = int(time.time() * 1000) // HOUR_MS * HOUR_MS + 30 * MINUTE_MS + 5_000
COUNTERS = ("dialed", "talk_ms")


def test_day_sums_are_kept_until_the_next_commit(redis_url: str) -> None:
    async def run() -> None:
        store = Store(redis_url, prefix="daycache:", tz=TZ)
        subscribed = [True]
        cache = store.day_cache = DayCache(lambda: subscribed[0])  # type: ignore[attr-defined]
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
            cache.commit_seen(None)  # the commit seen: read again
            assert (await window_sums(store, ["agent:a1"], today, COUNTERS))["agent:a1"]["today"]["dialed"] == 3.0
            subscribed[0] = False  # no subscription: nothing kept, every request reads
            await store.commit(CommitBatch(counters={("agent:a1", minute): {"dialed": 1}}, notify=False), NOW)
            assert (await window_sums(store, ["agent:a1"], today, COUNTERS))["agent:a1"]["today"]["dialed"] == 4.0
        finally:
            await store.close()
    asyncio.run(run())


def test_day_sums_are_dropped_for_the_scopes_a_commit_names(redis_url: str) -> None:
    async def run() -> None:
        store = Store(redis_url, prefix="daycache-scopes:", tz=TZ)
        hub = UpdateHub(aioredis.Redis.from_url(redis_url), store.layout.key("updates"), ApiConfig(),
                        owns_client=True)
        cache = store.day_cache = DayCache(lambda: hub.subscribed)  # type: ignore[attr-defined]
        hub.on_commit.append(cache.commit_seen)
        minute = NOW - NOW % MINUTE_MS - 5 * MINUTE_MS
        today = {"today": resolve_window("today", NOW, TZ)}
        agents = ["agent:a1", "agent:a2"]

        async def dialed() -> dict[str, float]:
            sums = await window_sums(store, agents, today, COUNTERS)
            return {a: sums[a]["today"]["dialed"] for a in agents}

        async def heard(batch: CommitBatch) -> None:
            """Commit with the real `updates` message and wait until the hub has heard it."""
            seen = cache.version
            await store.commit(batch, NOW)
            for _ in range(500):
                if cache.version > seen:
                    return
                await asyncio.sleep(0.01)
            raise AssertionError("the commit's message was not heard")

        def writes(agent: str, n: int) -> dict[tuple[str, int], dict[str, int | float]]:
            return {(agent, minute): {"dialed": n}}

        hub.start()
        try:
            for _ in range(500):
                if hub.subscribed:
                    break
                await asyncio.sleep(0.01)
            await heard(CommitBatch(counters={**writes("agent:a1", 1), **writes("agent:a2", 10)}))
            assert await dialed() == {"agent:a1": 1.0, "agent:a2": 10.0}
            # written behind the cache's back, unheard: what is kept shows whether a read happened
            await store.commit(CommitBatch(counters={**writes("agent:a1", 100), **writes("agent:a2", 100)},
                                           notify=False), NOW)
            await heard(CommitBatch(counters=writes("agent:a2", 1)))  # names a2 only
            assert await dialed() == {"agent:a1": 1.0, "agent:a2": 111.0}  # a1 kept, a2 read
            await store.commit(CommitBatch(counters=writes("agent:a2", 1000), notify=False), NOW)
            await heard(CommitBatch(counters=writes("center", 1)))  # another scope: both kept
            assert await dialed() == {"agent:a1": 1.0, "agent:a2": 111.0}
            # an older worker's message, the commit's clock alone: every scope read again
            seen = cache.version
            await store.redis.publish(store.layout.key("updates"), str(NOW))
            for _ in range(500):
                if cache.version > seen:
                    break
                await asyncio.sleep(0.01)
            assert await dialed() == {"agent:a1": 101.0, "agent:a2": 1111.0}
            # a team move names nothing: every scope read again
            await store.commit(CommitBatch(counters=writes("agent:a1", 1000), notify=False), NOW)
            assert await dialed() == {"agent:a1": 101.0, "agent:a2": 1111.0}
            assert updates_message(CommitBatch(team_moves=[TeamMove("a1", "t1", "t2")]), NOW) == str(NOW)
            assert scopes_named(updates_message(CommitBatch(team_moves=[TeamMove("a1", "t1", "t2")]), NOW)) is None
            cache.commit_seen(scopes_named(str(NOW).encode()))
            assert await dialed() == {"agent:a1": 1101.0, "agent:a2": 1111.0}
        finally:
            await hub.close()
            await store.close()
    asyncio.run(run())


def test_a_read_begun_before_a_commit_of_its_scope_is_not_kept() -> None:
    cache = DayCache(lambda: True)
    key = ("agent:a1", "2026-12-02", COUNTERS)
    began = cache.generation()
    assert began is not None
    cache.commit_seen(frozenset({"agent:a1"}))  # lands while the read is in flight
    cache.put(began, key, 1, {"dialed": 1.0})
    assert cache.get(cache.version, key, 1) is None
    other = ("agent:a2", "2026-12-02", COUNTERS)
    cache.put(began, other, 1, {"dialed": 2.0})  # another scope's read: still true, kept
    assert cache.get(cache.version, other, 1) == {"dialed": 2.0}
    began = cache.version
    cache.commit_seen(None)
    cache.put(began, key, 1, {"dialed": 1.0})
    assert cache.get(cache.version, key, 1) is None
    down = DayCache(lambda: False)
    assert down.generation() is None
    down.put(0, key, 1, {"dialed": 1.0})
    assert down.get(0, key, 1) is None

"""serve's live reads keep what did not change (`Store.live(kept)`, `query.live_rows(kept)`):
an agent whose stored state is the same is handed out as the same object, one whose state
changed is parsed again, one gone is gone; rows made from an older object are not served
for a new one, and the time in state follows the clock."""

from __future__ import annotations

import asyncio

import orjson

from stream.readers.query import live_rows
from stream.store.redis_store import LiveKept, Store

NOW = 1_790_000_000_000


def test_unchanged_live_states_are_kept_and_changed_ones_read_again(redis_url: str) -> None:
    async def run() -> None:
        store = Store(redis_url, prefix="livekept:")
        key = store.layout.key("live:agents")
        try:
            await store.redis.delete(key, store.layout.key("live:calls"))
            await store.redis.hset(key, mapping={
                "a1": orjson.dumps({"state": "available", "since": NOW - 5000, "team": "t1"}),
                "a2": orjson.dumps({"state": "on_call", "since": NOW - 1000, "team": "t2"}),
                "a3": orjson.dumps({"state": "paused", "since": NOW - 9000, "reason": "lunch"})})
            kept, rows = LiveKept(), {}  # type: ignore[var-annotated]
            first = (await store.live(kept)).agents
            assert first == (await store.live()).agents
            rows1 = live_rows(sorted(first.items()), NOW, rows)
            assert rows1 == live_rows(sorted(first.items()), NOW)
            await store.redis.hset(key, "a2", orjson.dumps({"state": "wrap_up", "since": NOW - 10, "team": "t3"}))
            await store.redis.hdel(key, "a3")
            second = (await store.live(kept)).agents
            assert second == (await store.live()).agents
            assert second["a1"] is first["a1"]  # unchanged: the same object
            assert second["a2"] is not first["a2"] and second["a2"]["state"] == "wrap_up"
            assert "a3" not in second and set(kept.agents) == {"a1", "a2"}
            later = NOW + 2500  # the clock moved: only the time in state changes, for every row
            rows2 = live_rows(sorted(second.items()), later, rows)
            assert rows2 == live_rows(sorted(second.items()), later)
            assert rows2[1]["state"] == "wrap_up" and rows2[1]["team_id"] == "t3"
            assert rows2[0]["seconds_in_state"] == 7.5
            rows2[0]["kpis"] = {}  # a caller completing its rows does not change the kept ones
            assert "kpis" not in live_rows(sorted(second.items()), later, rows)[0]
        finally:
            await store.redis.delete(key)
            await store.close()
    asyncio.run(run())

"""The race that reading the next batch before the current batch's commit opens: another worker
commits a state the next batch has already read, before the current batch's commit goes out.
The next batch's commit must then conflict (it read a version that is no longer stored) and be
redone on what Redis holds, so that the store ends exactly as if everything had been applied one
batch at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest

from stream.contract import Event, validate
from stream.kpi.windows import MAX_EVENT_AGE_MS
from stream.processing.pipeline import Pipeline, RawMessage
from stream.store.commit import CommitBatch, CommitConflict
from stream.store.redis_store import Store, StoreLoad
from tests.integration.test_pipelining import (
    NOW_S,
    TOPIC,
    batches,
    call_of,
    day,
    overlapped,
    pipeline,
    sequentially,
    stored,
)

pytestmark = pytest.mark.integration


def event_of(m: RawMessage) -> Event | None:
    checked = validate(m.value, now_ms=int(NOW_S * 1000), max_age_ms=MAX_EVENT_AGE_MS)
    return checked if isinstance(checked, Event) else None


class Racing(Store):
    """Records which entity keys were read, and lets another worker commit just before this
    worker's commit number `at` (from 1) goes out."""

    def __init__(self, url: str, prefix: str, other: Pipeline, copy: RawMessage, at: int) -> None:
        super().__init__(url, prefix)
        self.other, self.copy, self.at = other, copy, at
        self.read: set[str] = set()
        self.read_before_other: set[str] | None = None
        self.commits = 0
        self.conflicted: list[int] = []  # which commits (1 = the first) conflicted

    async def load(self, tps: Iterable[str], keys: Iterable[str], check: Iterable[str] = ()
                   ) -> StoreLoad:
        keys, check = list(keys), list(check)
        self.read.update(keys, check)
        return await super().load(tps, keys, check)

    async def commit(self, batch: CommitBatch, now_ms: int) -> None:
        self.commits += 1
        if self.commits == self.at:
            self.read_before_other = set(self.read)
            await self.other.handle([self.copy])
        try:
            await super().commit(batch, now_ms)
        except CommitConflict:
            self.conflicted.append(self.commits)
            raise


def test_a_state_read_ahead_of_the_commit_before_and_changed_meanwhile_is_redone(
        redis_url: str) -> None:
    parts = batches(day(), 300)
    at = 3  # the other worker commits just before the third batch's commit goes out
    earlier = {call_of(m) for part in parts[:at] for m in part} - {None}
    # The first event of a call that only the fourth batch has, without an agent: the other
    # worker's commit of it changes that call's state and nothing the third batch writes.
    moved = next(m for m in parts[at] for e in [event_of(m)]
                 if e is not None and e.call_id and e.call_id not in earlier
                 and not e.agent_id and e.type == "call.dialed")
    copy = RawMessage(TOPIC, 9, 0, moved.value, moved.timestamp_ms)  # a duplicate delivery
    worker = pipeline(redis_url, "race:")
    store = Racing(redis_url, "race:", pipeline(redis_url, "race:"), copy, at)
    worker.store = worker.loader.store = store

    asyncio.run(overlapped(worker, parts))
    call_key = store.layout.call_key(call_of(moved) or "")
    # The fourth batch read the call before the third batch's commit went out (the order of
    # reads ahead of the commit before them)...
    assert store.read_before_other is not None and call_key in store.read_before_other
    # ...so the third commit applied, the fourth conflicted on that call and was redone.
    assert store.conflicted == [at + 1]
    asyncio.run(sequentially(pipeline(redis_url, "raceref:"), [*parts[:at - 1], [copy], *parts[at - 1:]]))
    assert stored(redis_url, "race:") == stored(redis_url, "raceref:")

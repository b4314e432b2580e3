"""Contention is normal load: a batch that conflicts with another worker's commits more often
than any fixed cap (the old limit was 20) is still committed, exactly, and every conflict is
counted (`callcenter_pipeline_commit_conflicts_total`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
import redis

from stream.processing.pipeline import RawMessage
from stream.store.commit import CommitBatch, CommitConflict
from stream.store.redis_store import Store
from tests.integration.test_commit_faults import NOW_MS, calls, pipeline, redis_url  # noqa: F401 - fixture
from tests.integration.test_pipelining import stored

pytestmark = pytest.mark.integration
CONFLICTS = 22


class Contended(Store):
    """Before each of our first CONFLICTS commits, another worker commits an `agent.state` of
    the batch's agent (from its own partition), so ours finds the agent changed."""

    def __init__(self, url: str, prefix: str, other: Callable[[int], Awaitable[None]]) -> None:
        super().__init__(url, prefix)
        self.other = other
        self.attempts = self.conflicts = 0

    async def commit(self, batch: CommitBatch, now_ms: int) -> None:
        self.attempts += 1
        if self.attempts <= CONFLICTS:
            await self.other(self.attempts)
        try:
            await super().commit(batch, now_ms)
        except CommitConflict:
            self.conflicts += 1
            raise


def agent_states(n: int, partition: int, first_ts: int) -> list[RawMessage]:
    states = [{"event_id": f"st{partition}-{i}", "type": "agent.state", "ts": first_ts + i * 1000,
               "agent_id": "a1", "state": "available" if i % 2 else "paused", "team_id": "t1",
               **({"reason": "break"} if i % 2 == 0 else {})} for i in range(n)]
    return [RawMessage("dialer.events", partition, i, json.dumps(e).encode(), NOW_MS)
            for i, e in enumerate(states)]


def test_a_batch_conflicting_more_than_twenty_times_is_committed_exactly(redis_url: str) -> None:  # noqa: F811
    """Every message of the batch touches the contended agent, so even its halves conflict."""
    batch = [*agent_states(6, 0, NOW_MS - 20 * 60_000),
             *(m._replace(partition=1) for m in calls(2)[:4])]
    copies = agent_states(CONFLICTS, 9, NOW_MS - 40 * 60_000)
    other = pipeline(redis_url, "ct:")

    async def other_worker(attempt: int) -> None:
        await other.handle([copies[attempt - 1]])

    worker = pipeline(redis_url, "ct:")
    worker.store = worker.loader.store = Contended(redis_url, "ct:", other_worker)
    asyncio.run(worker.handle(batch))
    assert worker.store.conflicts == CONFLICTS
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert float(r.hget("ct:pipeline", "commit_conflicts") or 0) == CONFLICTS

    async def reference() -> None:
        p = pipeline(redis_url, "ctref:")
        for c in copies:
            await p.handle([c])
        await p.handle(batch)
    asyncio.run(reference())
    assert stored(redis_url, "ct:") == stored(redis_url, "ctref:")

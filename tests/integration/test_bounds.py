"""No valid event can overflow a stored counter (issue 9 item 4, contract side), on a real Redis.

Before contract 1.1 every `*_ms` up to 2^53−1 was valid: one batch of 2,000 such waits summed
past int64, Redis refused the `HINCRBY` in the middle of the commit script and the partition
never advanced. Now such values are `out_of_range`, and a batch of the largest valid values
commits exactly, even onto a lifetime total that already holds 20 years of maximal values.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import redis

from stream.cli.embedded import free_port, start_redis
from stream.contract import MAX_DURATION_MS
from stream.kpi.contributions import Thresholds
from stream.processing.pipeline import Pipeline, RawMessage
from stream.store.redis_store import Store

pytestmark = pytest.mark.integration
NOW = int(time.time() * 1000)
INT64_MAX = 2**63 - 1


def connect(i: int, wait_ms: int) -> bytes:
    return json.dumps({"event_id": f"w{i}-{wait_ms}", "type": "call.connected", "ts": NOW - 60_000,
                       "call_id": f"w{i}-{wait_ms}", "campaign_id": "c1", "agent_id": "a1",
                       "wait_ms": wait_ms}).encode()


def test_the_largest_valid_values_commit_exactly(tmp_path: Path) -> None:
    server = start_redis(free_port(), tmp_path)
    url = f"redis://127.0.0.1:{server.port}/0"
    r = redis.Redis.from_url(url, decode_responses=True)
    try:
        # a lifetime total that already holds 2 million maximal waits a day for 20 years
        history = 2 * 10**6 * 365 * 20 * MAX_DURATION_MS
        r.hset("b:t:center", "answer_wait_ms", history)

        async def dead_letter(key: bytes, value: bytes) -> None:
            return None

        p = Pipeline(Store(url, "b:"), dead_letter, Thresholds(), state_horizon_ms=3_600_000,
                     clock=lambda: NOW / 1000)
        values = [connect(i, 2**53 - 1) for i in range(1000)]
        values += [connect(i, MAX_DURATION_MS) for i in range(2000)]
        asyncio.run(p.handle([RawMessage("dialer.events", 0, i, v, NOW) for i, v in enumerate(values)]))
        pipeline = r.hgetall("b:pipeline")
        assert pipeline["rejected:out_of_range"] == "1000" and pipeline["accepted"] == "2000"
        total = int(r.hget("b:t:center", "answer_wait_ms") or 0)
        assert total == history + 2000 * MAX_DURATION_MS < INT64_MAX
        assert int(r.hget("b:t:agent:a1", "answer_wait_ms") or 0) == 2000 * MAX_DURATION_MS
    finally:
        r.close()
        server.stop()

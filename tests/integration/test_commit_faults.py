"""The commit script against a real Redis: a batch Redis would refuse half-way changes nothing
(every command that can fail is checked before the first write), and the worker says so (a log
line and the `commit_errors` counter) instead of retrying it for ever."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from stream.cli.embedded import free_port, start_redis
from stream.kpi.contributions import Thresholds
from stream.processing.pipeline import Pipeline, RawMessage
from stream.store.commit import CommitRejected
from stream.store.redis_store import Store

pytestmark = pytest.mark.integration
NOW_MS = int(time.time() * 1000)
TOPIC = "dialer.events"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_redis(free_port(), Path(tmp_path_factory.mktemp("redis")))
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


def calls(n: int) -> list[RawMessage]:
    """n answered, connected and ended calls of one agent, on one partition."""
    out: list[dict] = []
    for i in range(n):
        t = NOW_MS - 30 * 60_000 + i * 60_000
        base = {"call_id": f"ov{i}", "campaign_id": "c1"}
        out += [{"event_id": f"ov{i}-d", "type": "call.dialed", "ts": t, **base},
                {"event_id": f"ov{i}-a", "type": "call.answered", "ts": t + 5000,
                 "answered_by": "human", **base},
                {"event_id": f"ov{i}-c", "type": "call.connected", "ts": t + 6000,
                 "agent_id": "a1", "team_id": "t1", "wait_ms": 1000, **base},
                {"event_id": f"ov{i}-e", "type": "call.ended", "ts": t + 36000, "agent_id": "a1",
                 "talk_ms": 30000, "hold_ms": 0, **base}]
    return [RawMessage(TOPIC, 0, i, json.dumps(e).encode(), NOW_MS) for i, e in enumerate(out)]


def pipeline(url: str, prefix: str) -> Pipeline:
    async def dead_letter(key: bytes, value: bytes) -> None:
        return None

    return Pipeline(Store(url, prefix), dead_letter, Thresholds(), state_horizon_ms=72 * 3_600_000,
                    worker_id="w1", clock=lambda: NOW_MS / 1000)


def snapshot(r: redis.Redis, prefix: str) -> dict[bytes, tuple[bytes | None, int]]:
    """Every key under `prefix`: its serialized value and whether it has a TTL."""
    return {k: (r.dump(k), r.pttl(k) > 0) for k in r.scan_iter(f"{prefix}*")}


def test_a_batch_that_would_overflow_a_counter_leaves_redis_as_it_was(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    r = redis.Redis.from_url(redis_url)
    batch = calls(5)
    # Learn which counter the batch adds most to (on a prefix of its own) ...
    asyncio.run(pipeline(redis_url, "probe:").handle(batch))
    counters = redis.Redis.from_url(redis_url, decode_responses=True).hgetall("probe:t:campaign:c1")
    total = {str(f): int(v) for f, v in counters.items() if str(v).isdigit()}
    name = max(total, key=total.__getitem__)
    # ... then let the store hold that counter so high that adding the batch overflows 64 bits.
    asyncio.run(pipeline(redis_url, "ov:").handle(batch[:4]))  # the call's first events
    r.hset("ov:t:campaign:c1", name, 2**63 - 1 - total[name] // 2)
    before = snapshot(r, "ov:")
    p = pipeline(redis_url, "ov:")
    rest = [m._replace(offset=m.offset) for m in batch[4:]]
    with caplog.at_level(logging.ERROR), pytest.raises(CommitRejected, match="overflow"):
        asyncio.run(p.handle(rest))
    after = snapshot(r, "ov:")
    counted = after.pop(b"ov:pipeline")
    before.pop(b"ov:pipeline")
    assert after == before, "the refused batch changed Redis"
    assert counted is not None
    assert float(r.hget("ov:pipeline", "commit_errors") or 0) == 1
    assert any("refused the batch" in rec.getMessage() and name in rec.getMessage()
               for rec in caplog.records), [rec.getMessage() for rec in caplog.records]


def a_string_for_a_hash(r: redis.Redis, redis_url: str, prefix: str) -> None:
    r.set(f"{prefix}t:campaign:c1", "not a hash")


def a_word_for_a_count(r: redis.Redis, redis_url: str, prefix: str) -> None:
    asyncio.run(pipeline(redis_url, "probe2:").handle(calls(2)))  # a real counter's field name
    name = next(f for f in r.hkeys("probe2:t:campaign:c1"))
    r.hset(f"{prefix}t:campaign:c1", name, "twelve")


@pytest.mark.parametrize(("spoil", "prefix", "problem"), [
    (a_string_for_a_hash, "wt:", "not a hash"),
    (a_word_for_a_count, "nn:", "not a number"),
])
def test_a_bad_counter_is_refused_before_any_write(
        redis_url: str, spoil: Callable[[redis.Redis, str, str], None], prefix: str,
        problem: str) -> None:
    r = redis.Redis.from_url(redis_url)
    spoil(r, redis_url, prefix)
    before = snapshot(r, prefix)
    with pytest.raises(CommitRejected, match=problem):
        asyncio.run(pipeline(redis_url, prefix).handle(calls(3)))
    after = snapshot(r, prefix)
    after.pop(f"{prefix}pipeline".encode(), None)
    assert after == before


@pytest.mark.timeout(600)
def test_a_worker_stops_on_a_refused_batch_says_why_and_recovers_once_the_key_is_fixed(tmp_path: Path) -> None:
    """On real processes: the worker exits (status 70) with the log line and the counter instead
    of retrying for ever; nothing of the batch is applied; once the key is fixed, a restarted
    worker applies the stream exactly."""
    from tests.harness import make_service, wait_until
    batch = calls(8)
    svc = make_service(tmp_path, {"CALLKPI_BATCH_MAX": "500"})
    try:
        r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
        asyncio.run(pipeline(svc.infra.redis_url, "probe:").handle(batch))
        reference = r.hgetall("probe:t:campaign:c1")
        name = str(max((f for f, v in reference.items() if str(v).isdigit()), key=lambda f: int(reference[f])))
        r.hset("ck:t:campaign:c1", name, 2**63 - 10)
        worker = svc.start_worker()
        svc.publish([m.value for m in batch], [b"k"] * len(batch))
        assert worker.proc.wait(180) == 70
        log = (tmp_path / "worker-1.log").read_text()
        assert "Redis refused the batch" in log and "overflow" in log and name in log, log[-3000:]
        assert float(r.hget("ck:pipeline", "commit_errors") or 0) >= 1
        assert svc.pipeline_counter("consumed") == 0
        assert r.hgetall("ck:t:campaign:c1") == {name: str(2**63 - 10)}
        r.hdel("ck:t:campaign:c1", name)  # the operator fixes the key
        svc.start_worker()
        svc.wait_consumed(len(batch), timeout=180)
        wait_until(lambda: r.hgetall("ck:t:campaign:c1") == reference, 30,
                   lambda: f"{r.hgetall('ck:t:campaign:c1')} != {reference}")
    finally:
        svc.stop()

"""Every fault at once, on real processes (docs/operations.md, "Fault test in CI").

A broker, Redis with its AOF (`appendonly yes`, fsync every second), two workers and `serve`.
A simulated day with every delivery fault (duplicates, reordering, late and invalid events) is
published in chunks while the test

1. SIGKILLs a worker and its pipeline (batch) process, and starts a replacement;
2. SIGKILLs Redis and restarts it from its AOF (up to a second of commits is lost);
3. restores Redis to a snapshot taken earlier (minutes of commits are lost);
4. interleaves bursts of invalid messages of every shape.

At the end every KPI of every scope and hour equals the reference calculator, every worker is
still alive (but the one killed on purpose), and the rejection counters equal what was sent.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from tests.harness import HOUR_MS, Service, faulty_stretch, invalid_messages, kpi_differences, make_service, wait_until
from tests.reference.calculator import Reference

pytestmark = pytest.mark.integration
AGENTS, HOURS, CHUNKS = 40, 3.0, 6


def settled(svc: Service, expected: int, quiet_s: float = 3.0) -> bool:
    """The store has counted `expected` messages and its applied offsets have not moved for
    `quiet_s` (a Redis rollback lowers both; the workers must re-read what it lost)."""
    r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
    try:
        before = r.hgetall("ck:offsets")
        if float(r.hget("ck:pipeline", "consumed") or 0) < expected:
            return False
        time.sleep(quiet_s)
        return r.hgetall("ck:offsets") == before
    except (redis.ConnectionError, redis.BusyLoadingError):
        return False
    finally:
        r.close()


@pytest.mark.timeout(600)  # several minutes of real processes on a busy 2-core machine
def test_every_fault_at_once_keeps_every_kpi_exact(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    start = now - int(HOURS * HOUR_MS)
    deliveries, injected = faulty_stretch(4242, AGENTS, HOURS, start)
    size = len(deliveries) // CHUNKS + 1
    chunks = [deliveries[i:i + size] for i in range(0, len(deliveries), size)]
    bursts = [invalid_messages(now, seed=s) for s in range(2)]
    sent: list[bytes] = []

    svc = make_service(tmp_path, {"CALLKPI_BATCH_MAX": "300"}, redis_aof=True)

    def publish_chunk(i: int) -> None:
        values = [d.value for d in chunks[i]]
        svc.publish(values, [d.key for d in chunks[i]])
        sent.extend(values)

    def publish_burst(i: int) -> None:
        svc.publish(bursts[i], [str(n).encode() for n in range(len(bursts[i]))])
        sent.extend(bursts[i])

    def consumed_at_least(n: float, timeout: float = 120) -> None:
        wait_until(lambda: svc.pipeline_counter("consumed") >= n, timeout, svc.logs)

    try:
        first, second = svc.start_worker(), svc.start_worker()
        svc.start_server()
        r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
        wait_until(lambda: set(r.hgetall("ck:workers")) == {"worker-1", "worker-2"}, 60, svc.logs)
        r.close()
        time.sleep(8)  # both in the group (the join takes about half the session timeout)
        published_at = int(time.time() * 1000)

        publish_chunk(0)
        consumed_at_least(len(sent))
        snapshot = svc.snapshot_redis()  # the backup restored in step 3

        # 1. A worker and its batch process die mid-stream; a replacement joins.
        publish_chunk(1)
        publish_burst(0)
        consumed_at_least(len(sent) - len(chunks[1]) // 2)
        svc.kill_worker(second)
        replacement = svc.start_worker()
        consumed_at_least(len(sent))

        # 2. Redis is SIGKILLed mid-stream and restarted from its AOF.
        publish_chunk(2)
        consumed_at_least(len(sent) - len(chunks[2]) // 2)
        svc.kill_redis()
        time.sleep(2)
        svc.restart_redis()

        # 3. Redis is restored to the snapshot taken after the first chunk.
        publish_chunk(3)
        consumed_at_least(len(sent) - len(chunks[3]) // 2, timeout=180)
        before = svc.pipeline_counter("consumed")
        svc.restore_redis(snapshot)
        assert 0 <= svc.pipeline_counter("consumed") < before, "the restore lost no commits"

        for i in range(4, len(chunks)):
            publish_chunk(i)
            if i == 4:
                publish_burst(1)

        wait_until(lambda: settled(svc, len(sent)), 150,
                   lambda: f"consumed {svc.pipeline_counter('consumed')} of {len(sent)}\n"
                           f"{svc.logs()}")

        # Every worker is alive but the one killed on purpose.
        assert first.proc.poll() is None, svc.logs()
        assert replacement.proc.poll() is None, svc.logs()

        ref = Reference(sent, now_ms=published_at)
        counters = svc.pipeline_counters()
        assert counters.get("consumed") == len(sent)
        assert sum(ref.rejected.values()) >= 2 * 48 + sum(
            n for k, n in injected.items() if k.startswith("invalid:"))
        for reason in {*ref.rejected, *(k[len("rejected:"):] for k in counters
                                        if k.startswith("rejected:"))}:
            assert counters.get(f"rejected:{reason}", 0) == ref.rejected[reason], reason
        assert counters.get("duplicates", 0) == ref.duplicates

        first_hour = start // HOUR_MS * HOUR_MS
        last_hour = int(time.time() * 1000) // HOUR_MS * HOUR_MS
        compared, failures = kpi_differences(
            svc.url, lambda s, a, b: ref.kpis(s, a, b, now_ms=b), ["center", *ref.scopes()],
            first_hour, last_hour)
        assert compared > 5_000
        assert not failures, f"{len(failures)} of {compared} differ:\n" + "\n".join(failures[:40])
    finally:
        svc.stop()

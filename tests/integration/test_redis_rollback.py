"""Redis rolled back to an older snapshot while two workers run (a restore from backup, an RDB
after a crash, a failover to a lagging replica): Kafka has already moved past the lost commits,
so the workers must read those events again from Redis's applied offsets. Afterwards every KPI
equals the reference calculator and the rejection counters equal what was sent.

And the opposite: a Redis whose applied offsets are ahead of the partitions' ends (the topic was
recreated, or the Redis belongs to another cluster) must not silently skip the new events."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
import redis

from stream.cli.embedded import start_redis
from tests.harness import Service, faulty_stretch, hour_ranges, jsonl, make_service, same, wait_until
from tests.integration.test_crash import oracle, store_totals, stream
from tests.reference.calculator import Reference

pytestmark = pytest.mark.integration
HOUR = 3_600_000


def two_workers(svc: Service) -> redis.Redis:
    svc.start_worker(), svc.start_worker()
    r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
    wait_until(lambda: set(r.hgetall("ck:workers")) == {"worker-1", "worker-2"}, 90, svc.logs)
    time.sleep(8)  # both in the group: the join takes about half the session timeout
    return r


def restart_redis_from(svc: Service, snapshot: Path) -> None:
    """SIGKILL Redis and start it again on the same port from an older RDB snapshot."""
    port, workdir = svc.infra.redis.port, svc.infra.workdir
    svc.infra.redis.proc.send_signal(signal.SIGKILL)
    svc.infra.redis.proc.wait(10)
    shutil.copy(snapshot, workdir / "dump.rdb")
    svc.infra.redis = start_redis(port, workdir)


@pytest.mark.timeout(900)
def test_redis_restored_to_an_older_snapshot_loses_nothing(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    hours = 3.0
    deliveries, _ = faulty_stretch(909, 20, hours, now - int(hours * HOUR))
    third = len(deliveries) // 3
    chunks = [deliveries[:third], deliveries[third:2 * third], deliveries[2 * third:]]
    svc = make_service(tmp_path, {"CALLKPI_BATCH_MAX": "300"})
    try:
        r = two_workers(svc)
        published_at = int(time.time() * 1000)
        svc.publish_deliveries(chunks[0])
        svc.wait_consumed(len(chunks[0]), timeout=240)
        time.sleep(1)
        r.save()
        snapshot = tmp_path / "snapshot.rdb"
        shutil.copy(svc.infra.workdir / "dump.rdb", snapshot)
        at_snapshot = svc.pipeline_counter("consumed")
        svc.publish_deliveries(chunks[1])
        svc.wait_consumed(len(chunks[0]) + len(chunks[1]), timeout=240)
        time.sleep(3)  # Kafka's committed offsets move past the snapshot
        restart_redis_from(svc, snapshot)
        assert svc.pipeline_counter("consumed") == at_snapshot  # the rollback happened
        svc.publish_deliveries(chunks[2])
        svc.wait_consumed(len(deliveries), timeout=200)
        time.sleep(2)
        assert svc.pipeline_counter("consumed") == len(deliveries)
        assert svc.pipeline_counter("store_rewinds") >= 1
        assert all(w.proc.poll() is None for w in svc.workers), svc.logs()
        ref = Reference([d.value for d in deliveries], now_ms=published_at)
        for reason, n in ref.rejected.items():
            assert svc.pipeline_counter(f"rejected:{reason}") == n, reason
        svc.start_server()
        from stream.contract import format_ts
        first_hour = (now - int(hours * HOUR)) // HOUR * HOUR
        last_hour = int(time.time() * 1000) // HOUR * HOUR
        failures, compared = [], 0
        for start, end in hour_ranges(first_hour, last_hour):
            for scope in ["center", *ref.scopes()]:
                expected = ref.kpis(scope, start, end, now_ms=end)
                got = svc.get("/api/v1/kpis", scope=scope, **{"from": format_ts(start),
                                                               "to": format_ts(end)})["kpis"]
                for name, value in expected.items():
                    compared += 1
                    if not same(got.get(name), value):
                        failures.append(f"{name} {scope} {format_ts(start)}: pipeline "
                                        f"{got.get(name)!r} reference {value!r}")
        assert compared > 1000
        assert not failures, f"{len(failures)} of {compared} differ:\n" + "\n".join(failures[:30])
    finally:
        svc.stop()


@pytest.mark.timeout(600)
def test_a_store_ahead_of_the_topic_pauses_and_a_reset_counts_the_new_events(tmp_path: Path) -> None:
    """Redis claims partitions applied up to offset 100,000 that this fresh topic does not have
    (a recreated topic, another cluster's Redis). Policy `pause`: nothing applied, nothing
    skipped silently (log, counter, gauge). Then one worker with policy `reset` counts every new
    event exactly once."""
    events = stream(400, seed=21)
    svc = make_service(tmp_path, {"CALLKPI_BATCH_MAX": "200"})
    try:
        r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
        r.hset("ck:offsets", mapping={f"dialer.events:{p}": 100_000 for p in range(4)})
        first = svc.start_worker()
        svc.publish(jsonl(events))
        wait_until(lambda: svc.pipeline_counter("store_ahead") >= 4, 120, svc.logs)
        time.sleep(3)
        assert svc.pipeline_counter("consumed") == 0
        assert svc.pipeline_counter("replayed") == 0, "events were skipped as if applied"
        gauges = r.hgetall("ck:gauges")
        assert all(float(gauges[f"store_ahead:dialer.events:{p}"]) > 0 for p in range(4)), gauges
        assert first.proc.poll() is None
        assert "Partition paused" in (svc.infra.workdir / "worker-1.log").read_text()
        first.stop()
        svc.workers.clear()
        svc.workers.append(svc.spawn("worker-reset", ["worker"], {
            "CALLKPI_OFFSET_AHEAD_POLICY": "reset", "CALLKPI_WORKER_ID": "worker-reset",
            "CALLKPI_DATA_DIR": str(tmp_path / "reset")}))
        svc.wait_consumed(len(events), timeout=180)
        time.sleep(1)
        assert svc.pipeline_counter("consumed") == len(events)
        assert svc.pipeline_counter("store_offset_resets") == 4
        expected, actual = oracle(events), store_totals(svc.infra.redis_url)
        diff = {k: (actual.get(k), v) for k, v in expected.items() if actual.get(k) != v}
        assert not diff, f"{len(diff)} totals differ, e.g. {list(diff.items())[:10]}"
        assert all(float(v) == 0 for k, v in r.hgetall("ck:gauges").items()
                   if str(k).startswith("store_ahead:"))
    finally:
        svc.stop()


@pytest.mark.timeout(600)
def test_a_worker_starting_on_a_rolled_back_redis_seeks_back_on_assignment(tmp_path: Path) -> None:
    """Redis restored while no worker runs: on assignment the worker seeks each partition back
    to Redis's applied offset + 1 (Kafka's committed offsets are past it), before consuming."""
    events = stream(1500, seed=33)
    half = len(events) // 2
    svc = make_service(tmp_path, {"CALLKPI_BATCH_MAX": "300", "CALLKPI_COMMIT_INTERVAL_S": "0.5"})
    try:
        r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
        first = svc.start_worker()
        svc.publish(jsonl(events[:half]))
        svc.wait_consumed(half, timeout=180)
        time.sleep(1)
        r.save()
        snapshot = tmp_path / "snapshot.rdb"
        shutil.copy(svc.infra.workdir / "dump.rdb", snapshot)
        svc.publish(jsonl(events[half:]))
        svc.wait_consumed(len(events), timeout=180)
        time.sleep(3)  # Kafka's committed offsets move to the end
        first.stop()
        restart_redis_from(svc, snapshot)
        assert svc.pipeline_counter("consumed") == half
        svc.start_worker()
        svc.wait_consumed(len(events), timeout=180)
        time.sleep(1)
        assert svc.pipeline_counter("consumed") == len(events)
        assert "behind Kafka's committed offset" in (svc.infra.workdir / "worker-2.log").read_text()
        expected, actual = oracle(events), store_totals(svc.infra.redis_url)
        diff = {k: (actual.get(k), v) for k, v in expected.items() if actual.get(k) != v}
        assert not diff, f"{len(diff)} totals differ, e.g. {list(diff.items())[:10]}"
    finally:
        svc.stop()

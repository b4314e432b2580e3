"""`callkpi rebuild`: a store recomputed from Kafka equals the live one and the reference, also
when it is built while live traffic flows, interrupted and resumed, and then switched over to by
the documented procedure (docs/operations.md, "Rebuild from Kafka")."""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import HOUR_MS, Service, api_kpis, faulty_stretch, kpi_differences, make_service, wait_until
from tests.reference.calculator import RefConfig, Reference

pytestmark = pytest.mark.integration
AGENTS, HOURS = 40, 3.0
COUNTER_KEYS = ("m:*", "h:*", "t:*")


def store_counters(r: redis.Redis, prefix: str) -> dict[str, dict[str, float]]:
    """Every KPI counter hash (minute, hour, lifetime) of a store, by key without the prefix."""
    out: dict[str, dict[str, float]] = {}
    for pattern in COUNTER_KEYS:
        for key in r.scan_iter(match=prefix + pattern, count=1000):
            # `retracted:` fields count what late events took back on the way (monotone exported
            # counters): they depend on how the stream was cut into batches, not on what it holds
            out[key[len(prefix):]] = {str(f): float(v) for f, v in r.hgetall(key).items()
                                      if not str(f).startswith("retracted:")}
    return out


def counter_differences(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> list[str]:
    """Field by field, a field absent on one side counting as 0 (a retraction can leave a 0)."""
    diffs = []
    for key in sorted(set(a) | set(b)):
        fa, fb = a.get(key, {}), b.get(key, {})
        for f in sorted(set(fa) | set(fb)):
            x, y = fa.get(f, 0.0), fb.get(f, 0.0)
            if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6):
                diffs.append(f"{key} {f}: {x} != {y}")
    return diffs


def wait_log(svc: Service, name: str, text: str, timeout: float) -> None:
    log = svc.infra.workdir / f"{name}.log"
    wait_until(lambda: log.exists() and text in log.read_text(), timeout,
               lambda: f"{text!r} not in {name}.log:\n{log.read_text()[-3000:] if log.exists() else ''}")


def assert_equals_reference(url: str, ref: Reference, first_hour: int, last_hour: int) -> None:
    expected: Callable[[str, int, int], dict] = lambda s, a, b: ref.kpis(s, a, b, now_ms=b)
    compared, failures = kpi_differences(url, expected, ["center", *ref.scopes()],
                                         first_hour, last_hour)
    assert compared > 5_000
    assert not failures, f"{len(failures)} of {compared} differ:\n" + "\n".join(failures[:40])


@pytest.mark.timeout(600)  # several minutes of real processes on a busy 2-core machine
def test_rebuild_during_live_traffic_equals_the_live_store_and_switches_over(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    start = now - int(HOURS * HOUR_MS)
    deliveries, _ = faulty_stretch(99, AGENTS, HOURS, start)
    values, keys = [d.value for d in deliveries], [d.key for d in deliveries]
    first, second = int(len(values) * 0.6), int(len(values) * 0.9)
    svc = make_service(tmp_path, {"CALLKPI_BATCH_MAX": "500"})
    r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
    try:
        live_worker = svc.start_worker()
        svc.start_server()
        published_at = int(time.time() * 1000)
        svc.publish(values[:first], keys[:first])
        svc.wait_consumed(first, timeout=300)

        # The live store is not a rebuild target.
        refused = svc.run_cli(["rebuild", "--prefix", "ck:"])
        assert refused.returncode == 2 and "not empty (it is the live store)" in refused.stderr

        # A rebuild into a fresh prefix while live traffic flows; killed half-way, resumed.
        rebuild = svc.spawn("rebuild-1", ["rebuild", "--prefix", "rb:", "--follow"])
        svc.extra.append(rebuild)
        svc.publish(values[first:first + (second - first) // 2], keys[first:first + (second - first) // 2])
        wait_until(lambda: svc.pipeline_counter("consumed", "rb:") >= first * 0.3, 300, svc.logs)
        rebuild.proc.send_signal(signal.SIGKILL)
        rebuild.proc.wait(10)
        assert svc.pipeline_counter("consumed", "rb:") < second, "the rebuild finished before the kill"
        rebuild = svc.spawn("rebuild-2", ["rebuild", "--prefix", "rb:", "--follow", "--resume"])
        svc.extra.append(rebuild)
        svc.publish(values[first + (second - first) // 2:second],
                    keys[first + (second - first) // 2:second])
        wait_log(svc, "rebuild-2", "caught up:", 300)
        svc.wait_consumed(second, timeout=300)
        wait_until(lambda: svc.pipeline_counter("consumed", "rb:") >= second, 120, svc.logs)
        log = (svc.infra.workdir / "rebuild-2.log").read_text()
        assert "records " in log and "lag" in log, log[-2000:]  # the progress bar

        # KPI by KPI: the rebuilt store holds exactly what the live one holds, and the same
        # rejection and duplicate counts.
        diffs = counter_differences(store_counters(r, "ck:"), store_counters(r, "rb:"))
        assert not diffs, f"{len(diffs)} counters differ: {diffs[:20]}"
        for kind in ("campaign", "team", "agent", "caller_id", "list", "variant"):
            assert set(r.zrange(f"ck:seen:{kind}", 0, -1)) == set(r.zrange(f"rb:seen:{kind}", 0, -1)), kind
        assert r.zcard("ck:seen:agent") == AGENTS
        live_counts, rebuilt_counts = svc.pipeline_counters("ck:"), svc.pipeline_counters("rb:")
        for name in ("consumed", "accepted", "duplicates", "beyond_horizon"):
            assert rebuilt_counts.get(name, 0) == live_counts.get(name, 0), name
        for name in [n for n in {*live_counts, *rebuilt_counts} if n.startswith("rejected:")]:
            assert rebuilt_counts.get(name, 0) == live_counts.get(name, 0), name
        assert rebuilt_counts["rebuilt"] == second and "latency_count" not in rebuilt_counts
        assert not r.hgetall("rb:workers")  # a rebuild is not a worker in /health

        # Scope by scope, hour by hour, through the API: equal to the live API and the reference.
        _, rebuilt_url = svc.start_extra_server("serve-rb", {"CALLKPI_KEY_PREFIX": "rb:"})
        ref = Reference(values[:second], now_ms=published_at)
        first_hour, last_hour = start // HOUR_MS * HOUR_MS, int(time.time() * 1000) // HOUR_MS * HOUR_MS
        compared, failures = kpi_differences(rebuilt_url, api_kpis(svc.url),
                                             ["center", *ref.scopes()], first_hour, last_hour)
        assert not failures, f"{len(failures)} of {compared} differ from live:\n" + "\n".join(failures[:40])
        assert_equals_reference(rebuilt_url, ref, first_hour, last_hour)

        # The switch-over (docs/operations.md): stop the workers, wait until the rebuild covers
        # the group's committed offsets, start the workers on the new prefix, stop the rebuild.
        rebuild_log = svc.infra.workdir / "rebuild-2.log"
        live_worker.stop()
        seen = rebuild_log.read_text().count("ready to switch")
        wait_until(lambda: rebuild_log.read_text().count("ready to switch") > seen, 120,
                   lambda: rebuild_log.read_text()[-3000:])
        new_worker = svc.spawn("worker-rb", ["worker"], {
            "CALLKPI_KEY_PREFIX": "rb:", "CALLKPI_WORKER_ID": "worker-rb",
            "CALLKPI_DATA_DIR": str(svc.infra.workdir / "worker-rb")})
        svc.workers.append(new_worker)
        rebuild.proc.send_signal(signal.SIGINT)
        assert rebuild.proc.wait(60) == 0, svc.logs()
        svc.publish(values[second:], keys[second:])
        wait_until(lambda: svc.pipeline_counter("consumed", "rb:") >= len(values), 300, svc.logs)
        time.sleep(1)
        assert svc.pipeline_counter("consumed", "rb:") == len(values)
        assert new_worker.proc.poll() is None
        last_hour = int(time.time() * 1000) // HOUR_MS * HOUR_MS
        assert_equals_reference(rebuilt_url, Reference(values, now_ms=published_at),
                                first_hour, last_hour)

        # A changed KPI configuration: rebuilt under the new one, equal to the reference
        # calculator under the new one (and no longer to the old store).
        changed = tmp_path / "changed.toml"
        changed.write_text('conversation_threshold_ms = 60000\nsuccess_dispositions = ["sale"]\n')
        env = {"CALLKPI_CONFIG": str(changed)}
        rebuild = svc.spawn("rebuild-3", ["rebuild", "--prefix", "rb2:", "--quiet"], env)
        svc.extra.append(rebuild)
        assert rebuild.proc.wait(300) == 0, svc.logs()
        _, changed_url = svc.start_extra_server("serve-rb2", {"CALLKPI_KEY_PREFIX": "rb2:", **env})
        ref = Reference(values, now_ms=published_at,  # goals follow success (docs/configuration.md)
                        config=RefConfig(conversation_threshold_ms=60000, success_dispositions=("sale",),
                                         goal_dispositions=("sale", "qualified_lead")))
        assert_equals_reference(changed_url, ref, first_hour, last_hour)
        old = api_kpis(rebuilt_url)("center", first_hour, last_hour)
        new = api_kpis(changed_url)("center", first_hour, last_hour)
        assert new["conversations"] < old["conversations"] and new["conversions"] < old["conversions"]
    finally:
        r.close()
        svc.stop()


def _zone_with_other_dates(start_ms: int, end_ms: int) -> str:
    """A zone whose local dates over the range are not UTC's: day buckets cut in UTC would then
    have other keys than those cut in it. (Not "a different date at both ends": over a range
    that crosses UTC's midnight no zone has that, and the test failed in the first minutes of
    every UTC day.)"""
    from datetime import UTC, datetime, tzinfo
    from zoneinfo import ZoneInfo

    def dates(zone: tzinfo) -> set[object]:
        return {datetime.fromtimestamp(t / 1000, zone).date() for t in (start_ms, end_ms)}
    for name in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):  # UTC+14, UTC-11
        if dates(ZoneInfo(name)) != dates(UTC):
            return name
    raise AssertionError("no zone whose dates differ from UTC's over the range")


@pytest.mark.timeout(600)
def test_a_rebuild_cuts_day_buckets_in_the_centers_zone(tmp_path: Path) -> None:
    """A center outside UTC: the rebuilt store's local-day buckets (`d:`) equal the live
    worker's, which cuts them in the center's zone (docs/history.md)."""
    now = int(time.time() * 1000)
    start = now - 20 * 60_000
    deliveries, _ = faulty_stretch(5, 8, 20 / 60, start)
    values, keys = [d.value for d in deliveries], [d.key for d in deliveries]
    zone = _zone_with_other_dates(start, now)
    svc = make_service(tmp_path, {"CALLKPI_TIMEZONE": zone})
    r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
    try:
        svc.start_worker()
        svc.publish(values, keys)
        svc.wait_consumed(len(values), timeout=300)
        rebuild = svc.spawn("rebuild", ["rebuild", "--prefix", "rb:", "--quiet"])
        svc.extra.append(rebuild)
        assert rebuild.proc.wait(300) == 0, svc.logs()

        def days(prefix: str) -> dict[str, dict[str, float]]:
            return {str(key)[len(prefix):]: {str(f): float(v) for f, v in r.hgetall(key).items()}
                    for key in r.scan_iter(match=prefix + "d:*", count=1000)}
        live = days("ck:")
        assert live, "the live worker wrote no day buckets"
        assert sorted(days("rb:")) == sorted(live)
        assert not counter_differences(live, days("rb:"))
    finally:
        r.close()
        svc.stop()

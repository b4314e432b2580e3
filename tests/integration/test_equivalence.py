"""A simulated day with every delivery fault on, through the real broker, worker, Redis and API,
equals the independent reference calculator: every catalog KPI, every scope, every hour and the
whole day (counts exactly, floats to 1e-9 relative)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from stream.sim import FaultConfig, SimConfig, Simulator
from tests.harness import Service, hour_ranges, make_service, same
from tests.reference.calculator import Reference

pytestmark = pytest.mark.integration
HOUR = 3_600_000
AGENTS, HOURS = 40, 8.0
Day = tuple[Service, Reference, int, int]
"""The service fed a simulated day, the reference calculator over the same day, its start and end."""


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    now = int(time.time() * 1000)
    sim = Simulator(SimConfig(seed=2026, agents=AGENTS, hours=HOURS, start_ms=now - int(HOURS * HOUR),
                              faults=FaultConfig.all_on()))
    deliveries = list(sim)
    # Every rejection reason and every delivery fault actually occurs in this day.
    from stream.sim import INVALID_REASONS
    assert {f"invalid:{r}" for r in INVALID_REASONS} <= set(sim.stats), sim.stats
    assert sim.stats["late"] and sim.stats["duplicates"], sim.stats
    svc = make_service(tmp_path_factory.mktemp("equivalence"))
    try:
        svc.start_worker()
        svc.start_server()
        published_at = int(time.time() * 1000)
        svc.publish([d.value for d in deliveries], [d.key for d in deliveries])
        svc.wait_consumed(len(deliveries), timeout=300)
        # The whole day arrives as a backlog, consumed unevenly across partitions: no valid
        # agent event may fall outside the kept agent history (docs/architecture.md).
        assert svc.pipeline_counter("beyond_horizon") == 0
        ref = Reference([d.value for d in deliveries], now_ms=published_at)
        first_hour = (now - int(HOURS * HOUR)) // HOUR * HOUR
        last_hour = int(time.time() * 1000) // HOUR * HOUR
        yield svc, ref, first_hour, last_hour
    finally:
        svc.stop()


def test_rejections_match(day: Day) -> None:
    svc, ref, _, _ = day
    for reason, n in ref.rejected.items():
        assert svc.pipeline_counter(f"rejected:{reason}") == n, reason


def test_every_kpi_every_scope_every_hour(day: Day) -> None:
    from stream.contract import format_ts
    svc, ref, first_hour, last_hour = day
    scopes = ["center", *ref.scopes()]
    api_scopes = svc.get("/api/v1/scopes")
    assert len(scopes) > 50 and api_scopes["team"] and api_scopes["caller_id"]
    failures: list[str] = []
    compared = 0
    client = httpx.Client(base_url=svc.url, timeout=30)
    for start, end in hour_ranges(first_hour, last_hour):
        for scope in scopes:
            expected = ref.kpis(scope, start, end, now_ms=end)
            got = client.get("/api/v1/kpis", params={"scope": scope, "from": format_ts(start),
                                                     "to": format_ts(end)}).json()["kpis"]
            for name, value in expected.items():
                compared += 1
                if name not in got:
                    failures.append(f"{name} missing from the API")
                elif not same(got[name], value):
                    failures.append(f"{name} {scope} [{format_ts(start)}, {format_ts(end)}): "
                                    f"pipeline {got[name]!r} reference {value!r}")
    assert compared > 10_000
    assert not failures, f"{len(failures)} of {compared} values differ:\n" + "\n".join(failures[:40])

"""A simulated day with every delivery fault on, through the real broker, worker, Redis and API,
equals the independent reference calculator: every catalog KPI, every scope, every hour and the
whole day (counts exactly, floats to 1e-9 relative)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from stream.sim import INVALID_REASONS
from tests.harness import Service, faulty_stretch, kpi_differences, running_service
from tests.reference.calculator import Reference

pytestmark = pytest.mark.integration
HOUR = 3_600_000
AGENTS, HOURS = 40, 8.0
Day = tuple[Service, Reference, int, int]
"""The service fed a simulated day, the reference calculator over the same day, its start and end."""


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    now = int(time.time() * 1000)
    deliveries, stats = faulty_stretch(2026, AGENTS, HOURS, now - int(HOURS * HOUR))
    # Every rejection reason and every delivery fault actually occurs in this day.
    assert {f"invalid:{r}" for r in INVALID_REASONS} <= set(stats), stats
    with running_service(tmp_path_factory.mktemp("equivalence")) as svc:
        published_at = svc.feed(deliveries, timeout=300)
        # The whole day arrives as a backlog, consumed unevenly across partitions: no valid
        # agent event may fall outside the kept agent history (docs/architecture.md).
        assert svc.pipeline_counter("beyond_horizon") == 0
        ref = Reference([d.value for d in deliveries], now_ms=published_at)
        first_hour = (now - int(HOURS * HOUR)) // HOUR * HOUR
        last_hour = int(time.time() * 1000) // HOUR * HOUR
        yield svc, ref, first_hour, last_hour


def test_rejections_match(day: Day) -> None:
    svc, ref, _, _ = day
    for reason, n in ref.rejected.items():
        assert svc.pipeline_counter(f"rejected:{reason}") == n, reason


def test_every_kpi_every_scope_every_hour(day: Day) -> None:
    svc, ref, first_hour, last_hour = day
    scopes = ["center", *ref.scopes()]
    api_scopes = svc.get("/api/v1/scopes")
    assert len(scopes) > 50 and api_scopes["team"] and api_scopes["caller_id"]
    compared, failures = kpi_differences(
        svc.url, lambda scope, start, end: ref.kpis(scope, start, end, now_ms=end), scopes,
        first_hour, last_hour)
    assert compared > 10_000
    assert not failures, f"{len(failures)} of {compared} values differ:\n" + "\n".join(failures[:40])

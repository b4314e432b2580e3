"""Week and month targets in zones whose midnight is not on a UTC hour (Asia/Kolkata +05:30,
Australia/Adelaide +10:30 in its summer): once the period is more than 48 h old its first half
hour is no longer in minute buckets, but its whole local days are in day buckets, so the target
is evaluated (equal to the reference over the same range), not `no_data`."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from stream.cli.embedded import free_port, start_redis
from stream.kpi.config_file import parse_config
from stream.kpi.contributions import Thresholds
from stream.kpi.targets import window_range
from stream.processing.pipeline import Pipeline, RawMessage
from stream.readers.api import ApiContext
from stream.readers.business import Business
from stream.readers.query import Query
from stream.store.redis_store import Store
from tests.reference.calculator import Reference

pytestmark = pytest.mark.integration
H, D = 3_600_000, 86_400_000
NOW = int(time.time() * 1000) // 60_000 * 60_000


def dials(start: int, end: int) -> list[bytes]:
    """A call.dialed every 50 minutes from 10 minutes after `start` (the period's first half
    hour, which only minute buckets and day buckets hold) up to `end`."""
    out = []
    for n, ts in enumerate(range(start + 10 * 60_000, end, 50 * 60_000)):
        out.append(json.dumps({"event_id": f"d{n}", "type": "call.dialed", "ts": ts,
                               "call_id": f"c{n}", "campaign_id": "solar"}).encode())
    return out


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Australia/Adelaide"])
@pytest.mark.parametrize("window", ["week", "month"])
def test_week_and_month_targets_in_half_hour_zones(zone: str, window: str, tmp_path: Path) -> None:
    tz = ZoneInfo(zone)
    # Three days into the period at least: this one read now, else the last one at its end.
    start, _ = window_range(window, NOW, tz)
    clock = NOW
    if NOW - start < 3 * D:
        clock = start - 60_000
        start, _ = window_range(window, clock, tz)
    assert clock - start > 2 * D and start % H != 0  # its first minutes: beyond minute buckets
    # Read at a past clock, its last minutes were never in minute buckets (written > 48 h late):
    # no dials there, the rest is in hour and day buckets.
    raw = dials(start, clock if clock == NOW else clock - D)
    server = start_redis(free_port(), tmp_path)
    url = f"redis://127.0.0.1:{server.port}/0"
    config = parse_config(f'[[targets]]\nname = "Dials"\nkpi = "dialed"\nscope = "center"\n'
                          f'window = "{window}"\ngoal = 10\n', kpi_names=None)

    async def main() -> list[dict[str, Any]]:
        async def dead_letter(key: bytes, value: bytes) -> None:
            return None
        pipeline = Pipeline(Store(url, "ck:", tz), dead_letter, Thresholds(timezone=tz),
                            state_horizon_ms=72 * H, clock=lambda: NOW / 1000)
        await pipeline.handle([RawMessage("dialer.events", 0, i, v, NOW)
                               for i, v in enumerate(raw)])
        await pipeline.store.close()
        store = Store(url, "ck:", tz)
        ctx = ApiContext(store=store, query=Query(store, tz), tz=tz, call_expiry_ms=4 * H,
                         clock=lambda: clock / 1000)
        try:
            return await Business(ctx, config).targets(ctx.now_ms())
        finally:
            await store.close()
    try:
        [row] = asyncio.run(main())
    finally:
        server.stop()
    want = Reference(raw, now_ms=NOW).kpis("center", start, clock, now_ms=clock)["dialed"]
    assert "error" not in row, row["error"]
    assert row["status"] != "no_data" and row["value"] == want > 20, row

"""A store for the report tests: two simulated local days (yesterday and the day before) with an
A/B test, fed straight into the pipeline on a real Redis; a configuration with targets, an
experiment and a campaign-restricted token."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

from stream.cli.embedded import free_port, start_redis
from stream.kpi.contributions import Thresholds
from stream.processing.pipeline import Pipeline, RawMessage
from stream.sim import FaultConfig, SimConfig, generate
from stream.store.redis_store import Store
from tests.config_text import api_token, config_text, toml_table

ZONE = ZoneInfo("Europe/Berlin")
PREFIX = "ck:"
H = 3_600_000
ADMIN = "admin-token-for-reports"
SOLAR = "solar-supervisor-token"
OWN = "solar-q4"


CONFIG = config_text(
    api_token("admin", ADMIN),
    api_token("solar supervisor", SOLAR, scopes=[f"campaign:{OWN}"]),
    toml_table("targets", name="connect", kpi="connect_rate", scope="center", window="today",
               goal=0.5),
    toml_table("targets", name="campaign conversion", kpi="conversion_rate", scope="campaign:*",
               window="today", goal=0.1),
    toml_table("experiments", name="script-test", variants=["A", "B"],
               primary_kpi="conversion_rate", minimum_detectable_effect=0.2, window="30d"),
    timezone="Europe/Berlin")


class Fed(NamedTuple):
    url: str
    yesterday: date
    now_ms: int


def local(d: date, hour: float) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=ZONE).timestamp() * 1000 + hour * H)


@contextmanager
def fed_store(workdir: Path) -> Iterator[Fed]:
    """Yesterday 09:00-11:00 and the day before 10:00-11:30, local, with every fault on."""
    now_ms = int(time.time() * 1000)
    today = datetime.fromtimestamp(now_ms / 1000, ZONE).date()
    yesterday = today - timedelta(days=1)
    server = start_redis(free_port(), workdir)
    url = f"redis://127.0.0.1:{server.port}/0"
    offsets = [0] * 4
    msgs: list[RawMessage] = []
    for seed, (start, hours) in enumerate(((local(yesterday - timedelta(days=1), 10), 1.5),
                                           (local(yesterday, 9), 2.0)), 1):
        cfg = SimConfig(seed=seed, agents=8, hours=hours, start_ms=start, teams_of=4,
                        scenario="ab_test", scenario_at=0.0, faults=FaultConfig.all_on())
        for d in generate(cfg):
            p = zlib.crc32(d.key or b"") % 4
            msgs.append(RawMessage("dialer.events", p, offsets[p], d.value, d.deliver_ms))
            offsets[p] += 1

    async def feed() -> None:
        async def dead_letter(key: bytes, value: bytes) -> None:
            return None
        p = Pipeline(Store(url, PREFIX, ZONE), dead_letter, Thresholds(timezone=ZONE.key),
                     state_horizon_ms=72 * H, clock=lambda: now_ms / 1000)
        for i in range(0, len(msgs), 1000):
            await p.handle(msgs[i:i + 1000])
        await p.store.close()
    try:
        asyncio.run(feed())
        yield Fed(url, yesterday, now_ms)
    finally:
        server.stop()

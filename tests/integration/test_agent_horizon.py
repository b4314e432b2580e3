"""The agent-state horizon during a catch-up, against a real Redis: partitions consumed at
deliberately different speeds (one hours of event time ahead of the others) apply every valid
agent event, and every KPI equals the reference calculator's (docs/architecture.md)."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
import redis

from stream.kpi.contributions import Thresholds
from stream.kpi.scopes import parse_scope
from stream.kpi.windows import Range
from stream.processing.pipeline import Pipeline, RawMessage
from stream.readers.query import Query
from stream.sim import FaultConfig, SimConfig, generate
from stream.store.redis_store import Store
from tests.harness import hour_ranges, same
from tests.reference.calculator import Reference

pytestmark = pytest.mark.integration
HOUR = 3_600_000
NOW_S = time.time()
NOW = int(NOW_S * 1000)
TOPIC = "dialer.events"
PARTITIONS = 4


def backlog(hours: float, agents: int = 10, seed: int = 13) -> list[list[RawMessage]]:
    """A simulated stretch with every fault on, as the records of each partition."""
    cfg = SimConfig(seed=seed, agents=agents, hours=hours, start_ms=NOW - int(hours * HOUR),
                    faults=FaultConfig.all_on())
    parts: list[list[RawMessage]] = [[] for _ in range(PARTITIONS)]
    for d in generate(cfg):
        p = zlib.crc32(d.key or b"") % PARTITIONS
        parts[p].append(RawMessage(TOPIC, p, len(parts[p]), d.value, d.deliver_ms))
    return parts


def uneven(parts: list[list[RawMessage]], speeds: list[int]) -> Iterator[list[RawMessage]]:
    """Fetches as a catching-up consumer makes them: each round takes `speeds[p]` records of
    partition p (0: not yet), so partitions run apart by hours of event time."""
    pos = [0] * len(parts)
    while any(pos[p] < len(parts[p]) for p in range(len(parts))):
        for p, part in enumerate(parts):
            n = speeds[p] or (200 if all(pos[q] >= len(parts[q]) for q in range(len(parts))
                                         if speeds[q]) else 0)
            if n and pos[p] < len(part):
                yield part[pos[p]:pos[p] + n]
                pos[p] += n


def lag_gauges(batch: list[RawMessage], parts: list[list[RawMessage]]) -> dict[str, float]:
    """What the consumer reports with a fetch: records of the partition left after it."""
    last = batch[-1]
    return {f"lag:{last.tp}": len(parts[last.partition]) - last.offset - 1}


def pipeline(url: str, prefix: str, agent_state_ms: int = 6 * HOUR) -> Pipeline:
    async def dead_letter(key: bytes, value: bytes) -> None:
        return None

    return Pipeline(Store(url, prefix), dead_letter, Thresholds(), state_horizon_ms=72 * HOUR,
                    agent_state_ms=agent_state_ms, clock=lambda: NOW_S,
                    source_partitions=[f"{TOPIC}:{p}" for p in range(PARTITIONS)])


async def consume(p: Pipeline, parts: list[list[RawMessage]], speeds: list[int]) -> None:
    for batch in uneven(parts, speeds):
        await p.handle(batch, lag_gauges(batch, parts))


def pipeline_counter(url: str, prefix: str, name: str) -> float:
    return float(redis.Redis.from_url(url, decode_responses=True).hget(f"{prefix}pipeline", name)
                 or 0)


def differences(url: str, prefix: str, ref: Reference, first_hour: int, last_hour: int,
                kinds: tuple[str, ...] = ("center", "agent", "team")) -> list[str]:
    """Every KPI of every scope of `kinds`, per hour and over the whole stretch, store vs
    reference (ranges wholly in the past: open states are clipped at the range end)."""
    store = Store(url, prefix)
    query = Query(store, ZoneInfo("UTC"))
    scopes = sorted({"center", *(s for s in ref.scopes() if s.split(":")[0] in kinds)})
    out: list[str] = []

    async def run() -> None:
        for start, end in hour_ranges(first_hour, last_hour):
            got = await query.kpis([parse_scope(s) for s in scopes], Range(start, end), end)
            for s in scopes:
                expected = ref.kpis(s, start, end, now_ms=end)
                for name, value in expected.items():
                    if not same(got[parse_scope(s)].get(name), value):
                        out.append(f"{name} {s} [{start}, {end}): store "
                                   f"{got[parse_scope(s)].get(name)!r} reference {value!r}")
        await store.close()
    asyncio.run(run())
    return out


@pytest.mark.parametrize("speeds", [[0, 40, 40, 40], [400, 5, 60, 20]],
                         ids=["one-partition-last", "all-at-different-speeds"])
def test_catch_up_at_uneven_speeds_applies_every_agent_event(redis_url: str,
                                                             speeds: list[int]) -> None:
    hours = 9.0
    parts = backlog(hours)
    prefix = f"uneven{''.join(map(str, speeds))}:"
    asyncio.run(consume(pipeline(redis_url, prefix), parts, speeds))
    assert pipeline_counter(redis_url, prefix, "beyond_horizon") == 0
    ref = Reference([m.value for part in parts for m in part], now_ms=NOW)
    first_hour = (NOW - int(hours * HOUR)) // HOUR * HOUR
    diffs = differences(redis_url, prefix, ref, first_hour, NOW // HOUR * HOUR)
    assert not diffs, f"{len(diffs)} values differ:\n" + "\n".join(diffs[:30])

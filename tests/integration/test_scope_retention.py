"""Scopes retire (issue 9, item 11): a scope with no data inside the retention leaves the scope
index, its lifetime totals and newest-event gauge go, and no reader (scrape, /scopes, campaigns,
compliance, cost) reads it any more; the exported caller-ID series are bounded; watermarks of
partitions idle past the retention are dropped. Real redis-server, the real commit script."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stream.cli.embedded import free_port, start_redis
from stream.kpi.config_file import load_config
from stream.kpi.windows import DAY_MS, HOUR_MS, MINUTE_MS
from stream.readers import exporter
from stream.readers.api import ApiContext
from stream.readers.business import Business
from stream.readers.query import Query
from stream.store.commit import CommitBatch
from stream.store.layout import PartitionProgress
from stream.store.redis_store import Store

pytestmark = pytest.mark.integration
TZ = ZoneInfo("UTC")
T0 = 1_795_000_000_000 - 1_795_000_000_000 % HOUR_MS  # a fixed hour; clocks are injected
LATER = T0 + 36 * DAY_MS


@pytest.fixture()
def redis_url() -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="callkpi-retire-"))
    server = start_redis(free_port(), workdir)
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


def batch_of(campaign: str, caller_ids: list[str], minute: int, agent: str) -> CommitBatch:
    counters: dict[tuple[str, int], dict[str, float]] = {
        ("center", minute): {"dialed": len(caller_ids)},
        (f"campaign:{campaign}", minute): {"dialed": len(caller_ids), "staffed_ms": 60_000},
        (f"agent:{agent}", minute): {"staffed_ms": 60_000},
        (f"team:t-{agent}", minute): {"staffed_ms": 60_000},
        (f"list:l-{campaign}", minute): {"dialed": len(caller_ids)},
    }
    for i, did in enumerate(caller_ids):
        counters[(f"caller_id:{did}", minute + i * MINUTE_MS)] = {"dialed": 1}
    return CommitBatch(counters=counters, gauges={f"newest_event:{campaign}": minute + 30_000})


def scrape_at(url: str, now_ms: int) -> dict[str, list[dict[str, str]]]:
    """metric name -> label sets of one scrape with the clock at `now_ms`."""
    async def main() -> bytes:
        store = Store(url)
        ctx = ApiContext(store=store, query=Query(store, TZ), tz=TZ, call_expiry_ms=1_800_000,
                         clock=lambda: now_ms / 1000)
        ctx.extensions = Business(ctx, load_config(None))
        try:
            return await exporter.scrape(ctx)
        finally:
            await store.close()
    out: dict[str, list[dict[str, str]]] = {}
    for fam in text_string_to_metric_families(asyncio.run(main()).decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append(dict(s.labels))
    return out


T = TypeVar("T")


def run(url: str, fn: Callable[[Store], Awaitable[T]]) -> T:
    async def main() -> T:
        store = Store(url)
        try:
            return await fn(store)
        finally:
            await store.close()
    return asyncio.run(main())


def test_scopes_without_data_in_the_retention_retire(redis_url: str) -> None:
    async def fill(store: Store) -> None:
        await store.commit(batch_of("old", ["D-old"], T0, "a-old"), T0)
        await store.commit(batch_of("new", ["D-new"], LATER, "a-new"), LATER)
    run(redis_url, fill)

    scopes = run(redis_url, lambda s: s.scopes(LATER))
    assert scopes == {"campaign": ["new"], "team": ["t-a-new"], "agent": ["a-new"],
                      "caller_id": ["D-new"], "list": ["l-new"], "variant": []}
    # retired by the commit itself, not only hidden from readers: the index, the totals and
    # the newest-event gauge of a retired campaign are gone
    assert run(redis_url, lambda s: s.scopes()) == scopes
    raw = run(redis_url, lambda s: s.redis.keys(s.layout.prefix + "t:*"))
    assert sorted(raw) == sorted(f"ck:t:{k}" for k in (
        "center", "campaign:new", "agent:a-new", "team:t-a-new", "caller_id:D-new", "list:l-new"))
    gauges = run(redis_url, lambda s: s.redis.hgetall(s.layout.key("gauges")))
    assert set(gauges) == {"newest_event:new"}

    series = scrape_at(redis_url, LATER + MINUTE_MS)
    campaigns = {labels.get("campaign") for name, ls in series.items() for labels in ls
                 if name.startswith("callcenter_")} - {None}
    assert campaigns <= {"new", ""}, campaigns
    assert {ls["caller_id"] for ls in series["callcenter_caller_id_dialed_total"]} == {"D-new"}


def test_a_scope_seen_again_is_kept_by_its_newest_data(redis_url: str) -> None:
    async def fill(store: Store) -> None:
        await store.commit(batch_of("c1", ["D1"], T0, "a1"), T0)
        await store.commit(batch_of("c1", ["D1"], T0 + 20 * DAY_MS, "a1"), T0 + 20 * DAY_MS)
        # a late, old event of c1 must not lower its last-seen time
        await store.commit(batch_of("c1", ["D1"], T0 + 5 * DAY_MS, "a1"), T0 + 21 * DAY_MS)
        await store.commit(batch_of("c2", ["D2"], LATER, "a2"), LATER)
    run(redis_url, fill)
    assert run(redis_url, lambda s: s.scopes(LATER))["campaign"] == ["c1", "c2"]
    assert run(redis_url, lambda s: s.scopes(T0 + 56 * DAY_MS))["campaign"] == ["c2"]


def test_legacy_scope_sets_are_carried_over(redis_url: str) -> None:
    """A store written before scopes had times: its sets become sorted sets, each id seen
    'now', so nothing is lost on upgrade and everything retires after the retention."""
    async def fill(store: Store) -> None:
        await store.redis.sadd("ck:scopes:campaign", "legacy-a", "legacy-b")
        await store.redis.sadd("ck:scopes:caller_id", "D9")
    run(redis_url, fill)
    assert run(redis_url, lambda s: s.scopes(T0))["campaign"] == ["legacy-a", "legacy-b"]
    assert run(redis_url, lambda s: s.redis.exists("ck:scopes:campaign")) == 0
    assert run(redis_url, lambda s: s.scopes(T0))["caller_id"] == ["D9"]


def test_exported_caller_ids_are_capped(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporter, "CALLER_ID_SERIES_CAP", 3)
    dids = [f"D{i}" for i in range(8)]  # D7 seen last
    run(redis_url, lambda s: s.commit(batch_of("c1", dids, T0, "a1"), T0))
    series = scrape_at(redis_url, T0 + HOUR_MS)
    for name in ("dialed", "connected", "attempts_completed"):
        assert {ls["caller_id"] for ls in series[f"callcenter_caller_id_{name}_total"]} == {"D5", "D6", "D7"}
    dropped = series["callcenter_caller_id_series_dropped"]
    assert len(dropped) == 1


def test_watermarks_of_partitions_idle_past_the_retention_go(redis_url: str) -> None:
    async def fill(store: Store) -> dict:
        await store.redis.hset(store.layout.key("watermarks"), mapping={
            "dialer.events:0": f"{LATER - HOUR_MS}:1", "dialer.events:1": LATER - 30 * DAY_MS,
            "dialer.events:2": f"{T0 - DAY_MS}:1", "dialer.events:3": ":0"})
        assert await store.retire_idle_watermarks(LATER) == 1
        return await store.watermarks()
    # `<newest>:<caught up>` and a bare `<newest>` (written before the flag) alike; a partition
    # with nothing applied yet (no newest) is kept: it holds the agent horizon
    assert run(redis_url, fill) == {
        "dialer.events:0": PartitionProgress(LATER - HOUR_MS, True),
        "dialer.events:1": PartitionProgress(LATER - 30 * DAY_MS, False),
        "dialer.events:3": PartitionProgress(None, False)}

"""The exporter's fast path reports what the API reports.

A scrape sums windows inside Redis (`stream.readers.sums`) and writes the text format itself
(`stream.readers.exporter.render`) so that 5,000 agents fit in a second (`bench/scrape.py`).
Here a real redis-server is filled by the worker's own batch step from the simulator, and every
number the fast path produces is compared with the API's way of computing it.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.cli.embedded import free_port, start_redis
from stream.kpi.compliance import compliance_report
from stream.kpi.config_file import load_config
from stream.kpi.scopes import Scope
from stream.kpi.windows import resolve_window
from stream.readers import exporter
from stream.readers.api import ApiContext
from stream.readers.business import COMPLIANCE_COUNTERS, Business
from stream.readers.query import Query
from stream.readers.sums import ALL_COUNTERS, OpenTime, window_counters
from stream.store.redis_store import Store
from tests.harness import bench_module

pytestmark = pytest.mark.integration
TZ = ZoneInfo("UTC")
WINDOWS = ("5m", "15m", "1h", "today", "30d")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="callkpi-sums-"))
    server = start_redis(free_port(), workdir)
    url = f"redis://127.0.0.1:{server.port}/0"
    try:
        asyncio.run(bench_module("scrape").fill(url, agents=40, hours=1.5, copies=0, seed=5))
        yield url
    finally:
        server.stop()


T = TypeVar("T")


def _run(coro_fn: Callable[[ApiContext], Awaitable[T]]) -> Callable[[str], Coroutine[Any, Any, T]]:
    """Run `coro_fn(ctx)` against a fresh context on its own event loop (one per test)."""
    async def main(url: str) -> T:
        store = Store(url)
        config = load_config(None)
        ctx = ApiContext(store=store, query=Query(store, TZ), tz=TZ, call_expiry_ms=1_800_000)
        ctx.extensions = Business(ctx, config)
        try:
            return await coro_fn(ctx)
        finally:
            await store.close()
    return main


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def test_window_sums_equal_the_api_counters(redis_url: str) -> None:
    async def check(ctx: ApiContext) -> list[str]:
        now = ctx.now_ms()
        scopes_known = await ctx.store.scopes()
        live, _ = await ctx.store.live()
        scopes = [Scope("center")] + [Scope(k, i) for k in ("campaign", "team", "agent", "caller_id")
                                      for i in scopes_known[k]]
        ranges = {w: resolve_window(w, now, TZ) for w in WINDOWS}
        fast = await window_counters(ctx.store, scopes, ranges, ALL_COUNTERS, OpenTime(live, now))
        diffs = []
        for w, r in ranges.items():
            ref = await ctx.query.counters(scopes, r, now)
            for s in scopes:
                for c in ALL_COUNTERS:
                    if not _close(fast[w][s].get(c, 0.0), ref[s].get(c, 0.0)):
                        diffs.append(f"{w} {s} {c}: {fast[w][s].get(c)} != {ref[s].get(c)}")
        return diffs

    diffs = asyncio.run(_run(check)(redis_url))
    assert not diffs, "\n".join(diffs[:20])


def test_compliance_needs_only_its_counters(redis_url: str) -> None:
    """The exporter reads COMPLIANCE_COUNTERS only for the 30-day window: nothing else matters."""
    async def check(ctx: ApiContext) -> tuple[list, list]:
        now = ctx.now_ms()
        ids = (await ctx.store.scopes())["campaign"]
        scopes = [Scope("campaign", c) for c in ids]
        full = [await ctx.query.counters(scopes, resolve_window(w, now, TZ), now) for w in ("30d", "today")]
        some = [{s: {k: v for k, v in c.items() if k in COMPLIANCE_COUNTERS} for s, c in f.items()} for f in full]
        assert ctx.extensions is not None
        config = ctx.extensions.config

        def report(pair):
            return compliance_report({s.ident: c for s, c in pair[0].items()},
                                     {s.ident: c for s, c in pair[1].items()}, config, day_fraction=0.5)
        return report(full), report(some)

    full, some = asyncio.run(_run(check)(redis_url))
    assert full and full == some


def test_the_api_compliance_report_is_the_one_from_every_counter(redis_url: str) -> None:
    """`/api/v1/compliance` reads its counters only, inside Redis (`Business.compliance_reader`):
    the report is exactly the one from `Query.counters`' every counter, open agent time included."""
    async def check(ctx: ApiContext) -> tuple[list, list]:
        assert ctx.extensions is not None
        business: Business = ctx.extensions  # type: ignore[assignment]
        at = ctx.clock()
        ctx.clock = lambda: at
        now = ctx.now_ms()
        return await business.compliance(now), await business.compliance(now, business.compliance_reader())

    full, read = asyncio.run(_run(check)(redis_url))
    assert full and any(e.get("us_abandon_rate_30d") for e in full)
    assert read == full


def test_teams_and_agents_today_is_the_day_to_the_end_of_this_hour(redis_url: str) -> None:
    async def check(ctx: ApiContext) -> tuple[dict, dict]:
        now = ctx.now_ms()
        live, _ = await ctx.store.live()
        scopes = [Scope("agent", a) for a in sorted(live)] + \
            [Scope("team", t) for t in (await ctx.store.scopes())["team"]]
        r = exporter.day_by_hours(now, TZ)
        fast = await exporter.window_kpis(ctx.store, scopes, {"today": r}, exporter.AGENT_KPIS, OpenTime(live, now))
        return fast["today"], await ctx.query.kpis(scopes, r, now)

    fast, ref = asyncio.run(_run(check)(redis_url))
    assert len(fast) > 10
    for scope, values in fast.items():
        for k, v in values.items():
            assert _close(v, ref[scope][k]), (scope, k, v, ref[scope][k])


def test_the_page_is_prometheus_clients_text_format(redis_url: str) -> None:
    """`render` writes byte for byte what prometheus-client's writer would."""
    body = asyncio.run(_run(exporter.scrape)(redis_url))
    families = list(text_string_to_metric_families(body.decode()))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(type("Snapshot", (), {"collect": lambda self: families})())
    assert generate_latest(registry) == exporter.render(families)
    names = {f.name for f in families}
    per_agent = {f.name for f in families for s in f.samples if "agent" in s.labels}
    assert per_agent == {"callcenter_agent"}, "per-agent series in one family only"
    assert {"callcenter_window_connect_rate_ratio", "callcenter_compliance_us_abandon_rate_30d_ratio",
            "callcenter_dialed", "callcenter_pipeline_event_to_store_seconds"} <= names


def test_agents_kept_between_scrapes_are_re_read_round_robin(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a read quota below the agent count, a scrape reads the agents not seen before plus
    `quota` of the others, in turn; kept sums give the same values while nothing changes."""
    monkeypatch.setattr(exporter, "AGENTS_READ_PER_SCRAPE", 5)
    reads: list[int] = []
    real = exporter.window_sums

    async def counting(store, scopes, ranges, counters):
        reads.append(len(scopes))
        return await real(store, scopes, ranges, counters)
    monkeypatch.setattr(exporter, "window_sums", counting)

    async def check(ctx: ApiContext) -> tuple[list[dict], dict]:
        now = ctx.now_ms()
        live, _ = await ctx.store.live()
        day = exporter.day_by_hours(now, TZ)
        days, seen = exporter._AgentDays(), []
        for _ in range(3):
            seen.append(await days.kpis(ctx.store, sorted(live), day, OpenTime(live, now)))
        return seen, await ctx.query.kpis([Scope("agent", a) for a in sorted(live)], day, now)

    seen, ref = asyncio.run(_run(check)(redis_url))
    assert reads[0] == len(ref) > 5 and reads[1:] == [5, 5]
    for values in seen:
        for scope, kpis in values.items():
            assert all(_close(v, ref[scope][k]) for k, v in kpis.items()), scope


def test_agent_grid_read_in_parts_is_the_grid_read_at_once(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`/api/v1/agents` reads its page in parts (`api.AGENTS_PER_READ`) so that Redis and this
    process work at the same time: each row is exactly what one read of the whole page gives,
    and what `/api/v1/kpis?scope=agent:<id>` gives (less per-reason pause time)."""
    from stream.kpi.catalog import PAUSED_BY_REASON
    from stream.readers import api

    async def grid(ctx: ApiContext, per_read: int) -> dict[Scope, dict[str, Any]]:
        monkeypatch.setattr(api, "AGENTS_PER_READ", per_read)
        now = ctx.now_ms()
        live, _ = await ctx.store.live()
        return await api.agent_kpis(ctx, [Scope("agent", a) for a in sorted(live)],
                                    resolve_window("today", now, TZ), now)

    async def check(ctx: ApiContext) -> tuple[dict, dict, dict]:
        at = ctx.clock()
        ctx.clock = lambda: at  # open agent time grows with the clock: the same now for all three
        parts, whole = await grid(ctx, 7), await grid(ctx, 10_000)
        now = ctx.now_ms()
        return parts, whole, await ctx.query.kpis(list(whole), resolve_window("today", now, TZ), now)

    parts, whole, ref = asyncio.run(_run(check)(redis_url))
    assert len(whole) > 14 and list(parts) == list(whole) and parts == whole
    for scope, values in whole.items():
        assert values.keys() == ref[scope].keys() - {PAUSED_BY_REASON}
        for k, v in values.items():
            assert (v == ref[scope][k]) if isinstance(v, dict) else _close(v, ref[scope][k]), (scope, k)


def test_a_grid_of_a_few_kpis_is_the_whole_grid_restricted(redis_url: str) -> None:
    """`/api/v1/agents?kpis=...` (the wallboard asks for the five it shows) computes only those,
    from only their counters: each value is exactly the whole row's, and exactly what
    `/api/v1/kpis?scope=agent:<id>` gives (`today` of an agent is read from its day hash)."""
    from stream.readers import api
    names = ("handled", "aht_seconds", "calls_per_agent_hour", "conversions", "occupancy")

    async def check(ctx: ApiContext) -> tuple[dict, dict, dict]:
        at = ctx.clock()
        ctx.clock = lambda: at  # open agent time grows with the clock: the same now for all three
        now = ctx.now_ms()
        live, _ = await ctx.store.live()
        scopes = [Scope("agent", a) for a in sorted(live)]
        r = resolve_window("today", now, TZ)
        return (await api.agent_kpis(ctx, scopes, r, now, names), await api.agent_kpis(ctx, scopes, r, now),
                await ctx.query.kpis(scopes, r, now))

    few, whole, ref = asyncio.run(_run(check)(redis_url))
    assert len(few) > 14 and list(few) == list(whole)
    assert any(values["handled"] for values in few.values())
    for scope, values in few.items():
        assert list(values) == list(names)
        assert values == {k: whole[scope][k] for k in names}, scope
        assert values == {k: ref[scope][k] for k in names}, scope

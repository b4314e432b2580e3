"""Long history at scale: read times of a 13-month daily series and a 30-day weekday×hour
heatmap, and Redis memory per scope per year of day buckets.

    python bench/history.py                 # 5,000 agents, 50 campaigns (the budget)
    python bench/history.py --agents 500    # a quick look

What a scope writes per day is taken from the real worker code: a simulated hour
(`stream.sim`) goes through `stream.processing.pipeline.Pipeline` into a scratch Redis, and the
day hashes it leaves show how many counter fields a scope of each kind has per day. The store
is then filled with 13 months of day hashes (and 35 days of hour hashes) for the center and every
campaign, with those fields per day, and a sample of agents (a year of every agent would take
gigabytes, which is what the memory figure says). The reads are the API's own
(`stream.readers.history`).

Prints the figures and merges them into bench/results.json under "history". Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run import machine, save_result  # noqa: E402  (bench/run.py, beside this)

from stream.cli.embedded import free_port, start_redis  # noqa: E402
from stream.kpi.contributions import Thresholds  # noqa: E402
from stream.kpi.scopes import Scope  # noqa: E402
from stream.kpi.windows import DAY_MS, HOUR_MS, Range, decompose, floor_to, local_start  # noqa: E402
from stream.processing.pipeline import Pipeline, RawMessage  # noqa: E402
from stream.readers import history  # noqa: E402
from stream.sim import SimConfig, generate  # noqa: E402
from stream.store.layout import month_label  # noqa: E402
from stream.store.redis_store import Store  # noqa: E402

ZONE = ZoneInfo("Europe/Berlin")
KINDS = ("center", "campaign", "team", "agent", "caller_id", "list")


def fields_per_day(url: str, now_s: float) -> dict[str, list[str]]:
    """Per scope kind, the counter names a scope of that kind has in a day hash after a
    simulated hour (the largest set seen of that kind)."""
    async def feed() -> None:
        async def dead_letter(key: bytes, value: bytes) -> None:
            return None
        store = Store(url, "probe:", ZONE)
        p = Pipeline(store, dead_letter, Thresholds(), state_horizon_ms=72 * HOUR_MS,
                     clock=lambda: now_s)
        offsets = [0] * 4
        msgs = []
        for d in generate(SimConfig(seed=7, agents=60, hours=1.0,
                                    start_ms=int(now_s * 1000) - HOUR_MS)):
            part = zlib.crc32(d.key or b"") % 4
            msgs.append(RawMessage("dialer.events", part, offsets[part], d.value, d.deliver_ms))
            offsets[part] += 1
        for i in range(0, len(msgs), 2000):
            await p.handle(msgs[i:i + 2000])
        await store.close()
    asyncio.run(feed())
    r = redis.Redis.from_url(url, decode_responses=True)
    best: dict[str, list[str]] = {}
    for raw in r.scan_iter("probe:d:*", count=1000):
        key = str(raw)
        scope = key[len("probe:d:"):].rsplit(":", 1)[0]  # d:<scope>:<date>
        kind = scope.split(":")[0]
        names = sorted({str(f).split(":", 1)[1] for f in r.hkeys(key)})
        if len(names) > len(best.get(kind, [])):
            best[kind] = names
    for key in r.scan_iter("probe:*", count=1000):
        r.delete(key)
    return best


def months_back(today: date, n: int) -> list[date]:
    first = today.replace(day=1)
    out = []
    for _ in range(n):
        out.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    return sorted(out)


def fill_days(r: redis.Redis, prefix: str, scopes: list[str], names: dict[str, list[str]],
              months: list[date], rng: random.Random) -> None:
    """Day hashes of every scope for the months: every day, the kind's fields (the layout of
    `stream.store.layout`: `d:<scope>:<YYYY-MM-DD>`, field `<day>:<counter>`)."""
    pipe = r.pipeline(transaction=False)
    for n, scope in enumerate(scopes):
        fields = names[scope.split(":")[0]]
        for m in months:
            days = ((m.replace(day=28) + timedelta(days=4)).replace(day=1) - m).days
            for d in range(1, days + 1):
                mapping: dict[Any, Any] = {f"{d}:{c}": rng.randint(1, 5000) for c in fields}
                pipe.hset(f"{prefix}d:{scope}:{month_label(m)}-{d:02d}", mapping=mapping)
        if n % 50 == 49:
            pipe.execute()
    pipe.execute()


def fill_hours(r: redis.Redis, prefix: str, scopes: list[str], names: dict[str, list[str]],
               now_ms: int, days: int, rng: random.Random) -> None:
    pipe = r.pipeline(transaction=False)
    for scope in scopes:
        fields = names[scope.split(":")[0]]
        for k in range(days + 1):
            day = floor_to(now_ms, DAY_MS) - k * DAY_MS
            mapping: dict[Any, Any] = {f"{h}:{c}": rng.randint(1, 500) for h in range(24) for c in fields}
            pipe.hset(f"{prefix}h:{scope}:{day}", mapping=mapping)
        pipe.execute()


def memory_per_scope_year(r: redis.Redis, names: dict[str, list[str]], today: date,
                          sample: int, rng: random.Random) -> dict[str, dict[str, float]]:
    """Bytes of a year (12 local months) of day hashes per scope, by kind: `sample` scopes of
    a kind written, the growth of used_memory divided."""
    out: dict[str, dict[str, float]] = {}
    months = months_back(today, 12)
    for kind in KINDS:
        if kind not in names:
            continue
        before = int(r.info("memory")["used_memory"])
        count = 1 if kind == "center" else sample
        scopes = ["center"] if kind == "center" else [f"{kind}:m{i}" for i in range(count)]
        fill_days(r, "mem:", scopes, names, months, rng)
        grown = int(r.info("memory")["used_memory"]) - before
        out[kind] = {"fields_per_day": len(names[kind]),
                     "bytes_per_scope_year": round(grown / count),
                     "mib_per_1000_scopes_year": round(grown / count * 1000 / 2**20, 1)}
        for key in r.scan_iter("mem:*", count=1000):
            r.delete(key)
    return out


def timed(fn: Callable[[], object], runs: int = 7) -> dict[str, float]:
    """Median and max of `runs` calls, each from cold caches (the decomposition cache)."""
    times = []
    for _ in range(runs):
        decompose.cache_clear()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"median_ms": round(statistics.median(times) * 1000, 1),
            "max_ms": round(max(times) * 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=5000)
    ap.add_argument("--campaigns", type=int, default=50)
    ap.add_argument("--sample", type=int, default=50, help="scopes per kind for the memory figure")
    ap.add_argument("--ranked-agents", type=int, default=1000,
                    help="agents given 30 days of day buckets for the ranking timing")
    args = ap.parse_args()
    rng = random.Random(1)
    now_s = time.time()
    now_ms = int(now_s * 1000)
    today = datetime.fromtimestamp(now_s, ZONE).date()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(free_port(), Path(tmp))
        try:
            url = f"redis://127.0.0.1:{server.port}/0"
            r = redis.Redis.from_url(url, decode_responses=True)
            names = fields_per_day(url, now_s)
            memory = memory_per_scope_year(r, names, today, args.sample, rng)
            prefix = "ck:"
            campaigns = [f"campaign:c{i}" for i in range(args.campaigns)]
            fill_days(r, prefix, ["center", *campaigns], names, months_back(today, 14), rng)
            fill_hours(r, prefix, ["center", *campaigns[:5]], names, now_ms, 36, rng)
            agents = [f"agent:a{i}" for i in range(args.ranked_agents)]
            fill_days(r, prefix, agents, names, months_back(today, 2), rng)
            pipe = r.pipeline(transaction=False)
            for m in months_back(today, 2):
                pipe.sadd(f"{prefix}ix:agent:{month_label(m)}", *(a.split(":")[1] for a in agents))
            pipe.execute()
            # live agents: the open time a read adds (5,000 logged in)
            r.hset(f"{prefix}live:agents", mapping={
                f"a{i}": json.dumps({"state": "available", "since": now_ms - 600_000,
                                     "campaign": f"c{i % args.campaigns}", "team": f"t{i // 12}"})
                for i in range(args.agents)})
            keys = int(r.dbsize())
            store = Store(url, prefix, ZONE)
            loop = asyncio.new_event_loop()
            year_start = local_start(months_back(today, 14)[0], ZONE)  # 13 whole months back
            series_range = Range(year_start, local_start(today, ZONE))
            heat_range = Range(floor_to(now_ms, HOUR_MS) + HOUR_MS - 30 * DAY_MS,
                               floor_to(now_ms, HOUR_MS) + HOUR_MS)
            kpis = ("dialed", "connect_rate", "conversion_rate", "aht_seconds", "abandon_rate")
            points = loop.run_until_complete(history.series(
                store, Scope("center"), series_range, history.Step.DAY, kpis, now_ms))
            results = {
                "series_13_months_daily": {
                    "points": len(points), **timed(lambda: loop.run_until_complete(history.series(
                        store, Scope("center"), series_range, history.Step.DAY, kpis, now_ms)))},
                "series_month_daily_vs_previous_week_campaign": timed(
                    lambda: loop.run_until_complete(history.series(
                        store, Scope("campaign", "c3"), Range(local_start(months_back(today, 1)[0], ZONE), now_ms),
                        history.Step.DAY, kpis, now_ms, history.Compare.PREVIOUS_WEEK))),
                "heatmap_30d_weekday_hour": timed(lambda: loop.run_until_complete(
                    history.hour_profile(store, Scope("center"), heat_range, True, (), now_ms))),
                f"ranking_30d_{args.ranked_agents}_agents": timed(lambda: loop.run_until_complete(
                    history.breakdown(store, history.BreakdownBy.AGENT,
                                      Range(local_start(today - timedelta(days=30), ZONE),
                                            local_start(today, ZONE)),
                                      ("handled", "aht_seconds", "conversion_rate"),
                                      history.SortKey("handled", True), 50, now_ms)), runs=3),
            }
            loop.run_until_complete(store.close())
            loop.close()
        finally:
            server.stop()
    out = {
        "agents_live": args.agents, "campaigns": args.campaigns, "keys": keys,
        "reads": results, "memory_per_scope_year": memory,
        "machine": machine(),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    print(json.dumps(out, indent=2))
    save_result("history", out)


if __name__ == "__main__":
    main()

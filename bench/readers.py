"""Reader latency at scale (issue 11 goal 7): the API and /metrics on a filled store.

    python bench/readers.py --agents 500            # /agents at 500 agents
    python bench/readers.py --agents 5000 --hours 0.25 --copies 3   # wallboard and /metrics
    python bench/readers.py --agents 5000 --hours 0.25 --data DIR  # keep the filled Redis ...
    python bench/readers.py --agents 5000 --data DIR --reuse       # ... and measure it again

Redis is filled as `bench/scrape.py` fills it (the real batch step and commit script fed from the
simulator; the simulated stretch's counters committed again `--copies` times, each earlier), then
a real `callkpi serve` app answers over HTTP. Each request is timed from the client, one at a
time, on an otherwise idle server (so the time is the server's). Per kind of request:
`first_s`, the first after the server started (it also pays the process's warm-up: the first
Redis connections, script loads, first-call imports); `computed_*`, `--repeat` requests each
made after `serve`'s answer cache and live snapshot expired (`api.response_cache_seconds`), so
each is computed as after a store commit (median and largest), with the server's CPU for it
(`computed_serve_cpu_s`, `computed_redis_cpu_s`, medians); `cached_*`, `--repeat` immediate
repeats served from the answer cache. `--live-agents N`: under live traffic, each computed request is
made right after a real store commit (the commit script, `notify` on, so serve hears it as it
hears a worker's) adding one call to N agents' and the center's counters in the newest minute
before serve's clock: what one batch at ~2,000 events/s touches at 5,000 agents is a few hundred
agents (500 events, ~0.4 events/s per agent, a commit every ~0.25 s). Results then go under
`readers_<agents>_live`. serve runs as `callkpi serve` does, with its collector policy
(`stream.processing.collector.serving`); `--default-collector` runs it with Python's default
(results under `..._default_collector`) to show what the policy buys, and `computed_gc_s` is
serve's time in garbage collections per request (mean). A wallboard's full refresh is what `stream/readers/wallboard/app.js` asks for
(/kpis, /live, /agents every page, /targets, /compliance, /campaigns every page), summed.
Writes bench/results.json["readers_<agents>"]. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import statistics
import sys
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import machine, save_result  # noqa: E402
from scrape import FILLED, add_data_options, data_dir, fill, serve_at, start_redis  # noqa: E402

from stream.cli.embedded import free_port, wait_for_port  # noqa: E402
from stream.kpi.windows import MINUTE_MS  # noqa: E402
from stream.store.commit import CommitBatch  # noqa: E402
from stream.store.redis_store import Store  # noqa: E402

NEXT = re.compile(rb'"next_offset"\s*:\s*"?(\d+)')
GOALS = {"agents": 0.1, "kpis_30d": 0.05, "wallboard_refresh": 0.2, "metrics": 0.5}
CACHE_EXPIRY_S = 1.2
"""Longer than `api.response_cache_seconds` (1 s by default): the next request is computed."""


def timed(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> tuple[float, bytes]:
    t = time.monotonic()
    r = client.get(path, params=params)
    r.raise_for_status()
    return time.monotonic() - t, r.content


def paged(client: httpx.Client, path: str, params: dict[str, str]) -> float:
    total, body = timed(client, path, params)
    for _ in range(1000):
        m = NEXT.search(body)
        if not m:
            break
        dt, body = timed(client, path, {**params, "offset": m.group(1).decode()})
        total += dt
    return total


WALLBOARD_AGENT_KPIS = re.search(r'const AGENT_KPIS = "([^"]+)"',
                                 (ROOT / "stream/readers/wallboard/app.js").read_text()).group(1)  # type: ignore[union-attr]
"""The KPIs the wallboard asks the grid for (its tiles and leader boards), as app.js asks."""


def refresh(client: httpx.Client) -> float:
    """One wallboard refresh of the whole center, request by request, as app.js asks."""
    return (timed(client, "/api/v1/kpis", {"window": "today"})[0]
            + timed(client, "/api/v1/live", {})[0]
            + paged(client, "/api/v1/agents", {"window": "today", "kpis": WALLBOARD_AGENT_KPIS})
            + timed(client, "/api/v1/targets", {})[0]
            + timed(client, "/api/v1/compliance", {})[0]
            + paged(client, "/api/v1/campaigns", {"window": "today"}))


def redis_cpu_s(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


class LiveCommits:
    """A worker's commit landing between requests: one call dialed by each of `agents` agents
    (rotating through the center's agents, as batches do) and by the center, in the newest
    minute before serve's clock (`data_end_ms` + the time since `started`)."""

    def __init__(self, redis_url: str, agents: int, data_end_ms: int) -> None:
        self.store = Store(redis_url)
        names: list[bytes] = redis.Redis.from_url(redis_url).hkeys(self.store.layout.key("agents"))  # type: ignore[assignment]
        ids = sorted(k.decode() for k in names)
        self.ids = ids
        self.agents = min(agents, len(ids))
        self.data_end_ms = data_end_ms
        self.started = time.time()
        self.turn = 0

    async def commit(self) -> None:
        now_ms = self.data_end_ms + int((time.time() - self.started) * 1000)
        minute = now_ms // MINUTE_MS * MINUTE_MS - MINUTE_MS
        start = self.turn * self.agents % len(self.ids)
        touched = (self.ids + self.ids)[start:start + self.agents]
        self.turn += 1
        counters = {(f"agent:{a}", minute): {"dialed": 1} for a in touched}
        counters[("center", minute)] = {"dialed": len(touched)}
        await self.store.commit(CommitBatch(counters=counters), now_ms)  # type: ignore[arg-type]


def measure(redis_url: str, data_end_ms: int, repeat: int, live_agents: int = 0,
            collector: bool = True) -> dict:
    port = free_port()
    live = LiveCommits(redis_url, live_agents, data_end_ms) if live_agents else None
    loop = asyncio.new_event_loop()
    spawn = multiprocessing.get_context("spawn")
    cpu_ask, cpu_answer = spawn.Pipe()
    server = spawn.Process(target=serve_at, args=(redis_url, port, data_end_ms, collector, cpu_answer))
    server.start()
    out: dict[str, dict[str, float]] = {}
    store = redis.Redis.from_url(redis_url)

    def cpu() -> tuple[float, float, float]:
        cpu_ask.send(None)
        serve_cpu, gc_cpu = cpu_ask.recv()
        return serve_cpu, redis_cpu_s(store), gc_cpu
    try:
        wait_for_port(port, 60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            probes = {
                "agents": lambda: timed(client, "/api/v1/agents", {"window": "today"})[0],
                "agents_all_pages": lambda: paged(client, "/api/v1/agents", {"window": "today"}),
                "kpis_30d": lambda: timed(client, "/api/v1/kpis", {"window": "30d"})[0],
                "wallboard_refresh": lambda: refresh(client),
                "metrics": lambda: timed(client, "/metrics")[0],
            }
            first = {name: probe() for name, probe in probes.items()}  # warm-up included
            for name, probe in probes.items():
                computed, serve_cpu, store_cpu, gc_time = [], [], [], []
                for _ in range(repeat):
                    time.sleep(CACHE_EXPIRY_S)
                    if live is not None:
                        loop.run_until_complete(live.commit())
                        time.sleep(0.05)  # serve hears the commit's message
                    before = cpu()
                    computed.append(probe())
                    after = cpu()
                    serve_cpu.append(after[0] - before[0])
                    store_cpu.append(after[1] - before[1])
                    gc_time.append(after[2] - before[2])
                cached = [probe() for _ in range(repeat)]  # served from serve's answer cache
                out[name] = {"first_s": round(first[name], 4),
                             "computed_median_s": round(statistics.median(computed), 4),
                             "computed_max_s": round(max(computed), 4),
                             # the server time, which a shared machine's load does not inflate
                             # as it does the wall time: serve's CPU (`time.process_time()` in
                             # it, to the nanosecond) and Redis's (`INFO cpu`, microseconds)
                             "computed_serve_cpu_s": round(statistics.median(serve_cpu), 4),
                             "computed_redis_cpu_s": round(statistics.median(store_cpu), 4),
                             # serve's CPU in garbage collections during it (`gc.callbacks`): mean,
                             # as full collections come every few requests
                             "computed_gc_s": round(statistics.mean(gc_time), 4),
                             "cached_median_s": round(statistics.median(cached), 4),
                             "cached_max_s": round(max(cached), 4)}
    finally:
        if live is not None:
            loop.run_until_complete(live.store.close())
        loop.close()
        store.close()
        server.terminate()
        server.join(30)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=500)
    p.add_argument("--hours", type=float, default=0.5)
    p.add_argument("--copies", type=int, default=3)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--live-agents", type=int, default=0,
                   help="before each computed request, a commit touching this many agents (live traffic)")
    p.add_argument("--default-collector", action="store_true",
                   help="serve with Python's default collector policy, not serve's (collector.serving)")
    p.add_argument("--no-save", action="store_true")
    add_data_options(p)
    args = p.parse_args()
    workdir = data_dir(p, args, "callkpi-readers-")
    redis_proc, redis_url = start_redis(workdir)
    try:
        if args.reuse:
            filled = json.loads((workdir / FILLED).read_text())
        else:
            filled = asyncio.run(fill(redis_url, args.agents, args.hours, args.copies, seed=3))
            (workdir / FILLED).write_text(json.dumps({**filled, "hours": args.hours, "copies": args.copies}))
        result = {"agents": args.agents, "simulated_hours": filled.get("hours", args.hours),
                  "copies": filled.get("copies", args.copies), "events": filled["events"],
                  "fill_s": filled["fill_s"], "reused": args.reuse,
                  "load_before": os.getloadavg(), "live_agents": args.live_agents,
                  "collector": "default" if args.default_collector else "serve",
                  **measure(redis_url, filled["data_end_ms"], args.repeat, args.live_agents,
                            not args.default_collector)}
    finally:
        redis_proc.terminate()
        redis_proc.wait(30)
    result["goals_s"] = GOALS
    result["machine"] = machine()
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(json.dumps(result, indent=2))
    if not args.no_save:
        save_result(f"readers_{args.agents}" + ("_live" if args.live_agents else "")
                    + ("_default_collector" if args.default_collector else ""), result)


if __name__ == "__main__":
    main()

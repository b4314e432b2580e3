"""Where Redis's CPU per event goes: the real batch step and commit against a real redis-server.

    python bench/redis_profile.py [--agents 150 --hours 4 --batch 2000]

Runs the worker's `Pipeline` (validate → load → process → commit) over a simulated day in
batches like the worker's, without Kafka, against a fresh local redis-server. Prints Redis's own
CPU per event (user + system from /proc), `INFO commandstats` per command (calls and µs per
event; commands a script calls are counted under their own name and inside EVALSHA), and the
writes per event by key kind (counted in the encoded commits): entity states, the counter
fan-out to minute / hour / total hashes, live state, scope index, the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import redis  # noqa: E402
from stages import sim_messages  # noqa: E402

from stream.cli.embedded import free_port, start_redis  # noqa: E402
from stream.kpi.contributions import Thresholds  # noqa: E402
from stream.processing.pipeline import Pipeline  # noqa: E402
from stream.store.redis_store import Store  # noqa: E402


def bench_pipeline(store: Store) -> Pipeline:
    """The worker's batch step with nowhere to dead-letter (these runs have no Kafka)."""
    async def dead_letter(key: bytes, value: bytes) -> None:
        return None

    return Pipeline(store, dead_letter, Thresholds(), state_horizon_ms=72 * 3_600_000,
                    worker_id="bench")


async def drive(url: str, messages: list[Any], batch: int) -> None:
    store = Store(url)
    pipeline = bench_pipeline(store)
    for i in range(0, len(messages), batch):
        await pipeline.handle(messages[i:i + batch])
    await store.close()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=150)
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=5000, help="events per batch (CALLKPI_BATCH_MAX)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--config", action="append", default=[],
                    help="NAME=VALUE: CONFIG SET on the fresh Redis before the run")
    args = ap.parse_args()
    messages = sim_messages(args.agents, args.hours)
    n = len(messages)
    port = free_port()
    server = start_redis(port, Path(tempfile.mkdtemp(prefix="redis-profile-")))
    try:
        r = redis.Redis(port=port, decode_responses=True)
        for item in args.config:
            name, _, value = item.partition("=")
            r.config_set(name, value)
        r.config_resetstat()
        cpu0 = cpu_s(server.proc.pid)
        t0 = time.monotonic()
        asyncio.run(drive(f"redis://127.0.0.1:{port}/0", messages, args.batch))
        wall = time.monotonic() - t0
        cpu = cpu_s(server.proc.pid) - cpu0
        stats = r.info("commandstats")
        mem = r.info("memory")["used_memory"]
    finally:
        server.stop()
    rows = sorted(((k.removeprefix("cmdstat_"), v) for k, v in stats.items()),
                  key=lambda kv: -kv[1]["usec"])
    out = {"events": n, "sim": f"{args.agents} agents, {args.hours} h", "batch": args.batch,
           "redis_cpu_us_per_event": round(cpu / n * 1e6, 1), "wall_s": round(wall, 1),
           "redis_used_mb": round(mem / 2**20, 1),
           "commands": {name: {"calls_per_event": round(v["calls"] / n, 2),
                               "us_per_event": round(v["usec"] / n, 2),
                               "us_per_call": v["usec_per_call"]} for name, v in rows}}
    print(f"{n:,} events ({out['sim']}), batches of {args.batch}: Redis CPU "
          f"{out['redis_cpu_us_per_event']} µs/event (user+sys), used memory {out['redis_used_mb']} MB")
    print(f"{'command':<14}{'calls/event':>12}{'µs/event':>10}{'µs/call':>9}")
    for name, v in out["commands"].items():
        print(f"{name:<14}{v['calls_per_event']:>12}{v['us_per_event']:>10}{v['us_per_call']:>9}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Redis time of the batch commit per event (issue 9, item 4: the script validates first).

    python bench/commit_cost.py [--agents 40 --hours 2] [--rounds 5] [--repo PATH]

Commits a simulated stretch (batches of 300, one worker, no contention) into a local
redis-server `--rounds` times and reads Redis's own `INFO commandstats`: the CPU Redis spends in
the commit script (and the one-`EVAL` version reads) per event; the minimum over the rounds
(other load on the machine only adds). `--repo` runs another checkout's `stream` package, e.g.
the commit before the validation phase: `git archive e44e122 | tar -x -C /tmp/before` and
`--repo /tmp/before`. Writes bench/results.json "commit_cost" (keyed by the repo's commit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
REPO = Path(sys.argv[sys.argv.index("--repo") + 1]).resolve() if "--repo" in sys.argv else ROOT
sys.path.insert(0, str(REPO))

from run import machine, save_result  # noqa: E402  (bench/run.py, beside this)

from stream.cli.embedded import free_port, start_redis  # noqa: E402
from stream.kpi.contributions import Thresholds  # noqa: E402
from stream.processing.pipeline import Pipeline, RawMessage  # noqa: E402
from stream.sim import FaultConfig, SimConfig, generate  # noqa: E402
from stream.store.redis_store import Store  # noqa: E402


def messages(agents: int, hours: float) -> list[RawMessage]:
    now = int(time.time() * 1000)
    cfg = SimConfig(seed=5, agents=agents, hours=hours, start_ms=now - int(hours * 3_600_000),
                    faults=FaultConfig())
    offsets = [0] * 4
    out = []
    for d in generate(cfg):
        p = zlib.crc32(d.key or b"") % 4
        out.append(RawMessage("dialer.events", p, offsets[p], d.value, d.deliver_ms))
        offsets[p] += 1
    return out


def script_usec(r: redis.Redis) -> tuple[float, int]:
    stats = r.info("commandstats")
    usec = calls = 0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        if name in stats:
            usec += stats[name]["usec"]
            calls += stats[name]["calls"]
    return usec, calls


async def commit_all(url: str, prefix: str, batches: list[list[RawMessage]]) -> None:
    async def dead_letter(key: bytes, value: bytes) -> None:
        return None

    store = Store(url, prefix)
    p = Pipeline(store, dead_letter, Thresholds(), state_horizon_ms=72 * 3_600_000, cache_bytes=64 << 20)
    for b in batches:
        await p.handle(b)
    await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=40)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repo", type=Path, default=ROOT)
    args = ap.parse_args()
    msgs = messages(args.agents, args.hours)
    batches = [msgs[i:i + 300] for i in range(0, len(msgs), 300)]
    server = start_redis(free_port(), Path(tempfile.mkdtemp(prefix="callkpi-commit-cost-")))
    url = f"redis://127.0.0.1:{server.port}/0"
    r = redis.Redis.from_url(url)
    per_event: list[float] = []
    try:
        for round_ in range(args.rounds):
            r.config_resetstat()
            asyncio.run(commit_all(url, f"r{round_}:", batches))
            per_event.append(round(script_usec(r)[0] / len(msgs), 1))
    finally:
        server.stop()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or REPO.name
    out = {"events": len(msgs), "batches": len(batches), "rounds_us_per_event": per_event,
           "min_us_per_event": min(per_event),
           "unit": "Redis µs in the commit script and version reads per event (INFO commandstats)",
           "machine": machine(),
           "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps(out, indent=2))
    save_result("commit_cost", out, under=str(args.repo) if args.repo != ROOT else commit)


if __name__ == "__main__":
    main()

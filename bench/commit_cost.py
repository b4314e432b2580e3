"""Redis time of the commit script, with and without its validation phase (issue 9, item 4).

    python bench/commit_cost.py [--agents 40 --hours 2] [--old-script PATH]

Commits the same simulated stretch (batches of 300, one worker, no contention) twice into a
local redis-server, once with `stream/store/commit.lua` and once with the script given by
`--old-script` (e.g. `git show e44e122:stream/store/commit.lua > /tmp/old.lua`, the script before
the validation phase), and reads Redis's own `INFO commandstats` for the script's calls: the CPU
Redis spends inside the scripts, per event. Writes bench/results.json "commit_cost".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import zlib
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run import RESULTS  # noqa: E402  (bench/run.py, beside this)

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


async def commit_all(url: str, prefix: str, lua: str, batches: list[list[RawMessage]]) -> None:
    async def dead_letter(key: bytes, value: bytes) -> None:
        return None

    store = Store(url, prefix)
    store._commit = store.redis.register_script(lua)
    p = Pipeline(store, dead_letter, Thresholds(), state_horizon_ms=72 * 3_600_000, cache_bytes=64 << 20)
    for b in batches:
        await p.handle(b)
    await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=40)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--old-script", type=Path, required=True)
    args = ap.parse_args()
    msgs = messages(args.agents, args.hours)
    batches = [msgs[i:i + 300] for i in range(0, len(msgs), 300)]
    scripts = {"validated": (ROOT / "stream" / "store" / "commit.lua").read_text(),
               "unvalidated": args.old_script.read_text()}
    server = start_redis(free_port(), Path(tempfile.mkdtemp(prefix="callkpi-commit-cost-")))
    url = f"redis://127.0.0.1:{server.port}/0"
    r = redis.Redis.from_url(url)
    out: dict[str, object] = {"events": len(msgs), "batches": len(batches)}
    try:
        for round_ in range(2):  # alternate, twice each: the machine's speed drifts
            for name, lua in scripts.items():
                r.config_resetstat()
                asyncio.run(commit_all(url, f"{name}{round_}:", lua, batches))
                usec, _ = script_usec(r)  # the commit script and the version reads (same in both)
                out.setdefault(name, []).append(round(usec / len(msgs), 2))  # type: ignore[union-attr]
    finally:
        server.stop()
    out["unit"] = "Redis µs of script time per event (INFO commandstats, eval + evalsha)"
    out["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    out["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(json.dumps(out, indent=2))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["commit_cost"] = out
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

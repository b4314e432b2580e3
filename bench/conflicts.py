"""Commit conflicts between workers sharing one simulated stream (real broker, Redis, workers).

    python bench/conflicts.py [--agents 60] [--hours 2] [--rate 500]

For 2 and 4 workers in one consumer group on the 4-partition topic, each twice: the whole stream
published at once (a backlog: every worker commits as fast as it can, the worst case) and
published at `--rate` events/s (live traffic). Reports conflicts per committed batch and per
1,000 events, and writes them to bench/results.json under "conflicts" (the sittings before move
into its `earlier` list; BENCHMARKS.md explains them). Not a test: nothing here asserts a rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run import TOPIC, machine, produce, save_result, sim_events, spawn, stop_all, worker_env  # noqa: E402  (bench/run.py, beside this)

from stream.cli.embedded import create_topics, start_infra  # noqa: E402

PARTITIONS = 4


def pipeline_counter(r: redis.Redis, name: str) -> float:
    return float(r.hget("ck:pipeline", name) or 0)


def publish_paced(bootstrap: str, events: list[tuple[bytes | None, bytes]], rate: float) -> None:
    """Send in 100 ms slices of `rate` events/s, like dialers producing live."""
    step = max(1, int(rate / 10))
    start = time.monotonic()
    for i in range(0, len(events), step):
        produce(bootstrap, events[i:i + step])
        lag = start + (i + step) / rate - time.monotonic()
        if lag > 0:
            time.sleep(lag)


def one_run(workers: int, events: list[tuple[bytes | None, bytes]], rate: float | None) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="callkpi-conflicts-"))
    infra = start_infra(workdir=workdir)
    procs = []
    try:
        create_topics(infra.bootstrap, {TOPIC: PARTITIONS, "dialer.events.dlq": 1})
        r = redis.Redis.from_url(infra.redis_url)
        env = {**worker_env(infra), "CALLKPI_PARTITIONS": str(PARTITIONS)}
        for i in range(workers):
            procs.append(spawn([sys.executable, "-m", "stream.cli.main", "worker"],
                               {**env, "CALLKPI_WORKER_ID": f"w{i}",
                                "CALLKPI_DATA_DIR": str(workdir / f"w{i}")}, workdir / f"w{i}.log"))
        deadline = time.monotonic() + 120
        while len(r.hgetall("ck:workers")) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start; logs in {workdir}")
            time.sleep(0.5)
        time.sleep(10)  # every worker in the group (the join takes about half the session timeout)
        started = time.monotonic()
        if rate:
            sender = threading.Thread(target=publish_paced, args=(infra.bootstrap, events, rate))
            sender.start()
        else:
            produce(infra.bootstrap, events)
        while pipeline_counter(r, "consumed") < len(events):
            if time.monotonic() - started > 1800 or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"run did not finish; logs in {workdir}")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        if rate:
            sender.join()
        batches, conflicts = pipeline_counter(r, "batches"), pipeline_counter(r, "commit_conflicts")
        return {"workers": workers, "mode": f"{rate:g} events/s" if rate else "backlog",
                "events": len(events), "batches": int(batches), "conflicts": int(conflicts),
                "conflicts_per_batch": round(conflicts / batches, 4) if batches else 0.0,
                "conflicts_per_1000_events": round(1000 * conflicts / len(events), 2),
                "seconds": round(elapsed, 1), "all_alive": all(p.poll() is None for p in procs)}
    finally:
        stop_all(procs, 20)
        infra.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=60)
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--rate", type=float, default=500.0)
    args = p.parse_args()
    events = sim_events(args.agents, args.hours, seed=17)
    runs = []
    for workers in (2, 4):
        for rate in (None, args.rate):
            run = one_run(workers, events, rate)
            print(json.dumps(run), flush=True)
            runs.append(run)
    result = {"runs": runs, "agents": args.agents, "hours": args.hours,
              "machine": machine(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    save_result("conflicts", result, keep_earlier=True)


if __name__ == "__main__":
    main()

"""Several workers on one stream: throughput, commit conflicts and Redis CPU per event.

    python bench/scaleout.py [--agents 150 --hours 8 --workers 1,2,4 --partitions 4]

For each worker count: a fresh broker and Redis, the same simulated file published to
`--partitions` partitions (keyed as the simulator keys them: call events by call, agent events
by agent, so one agent's events arrive on several partitions), then that many `callkpi worker`s
in one consumer group consume it all. Measured from the first commit to the last event: events/s,
CPU µs per event of all workers (Faust + pipeline processes), Redis and the broker (from /proc),
and the commit conflicts the workers logged (a conflict redoes a batch on fresh state) per
batch committed. On 2 cores, more workers than cores share them: the figure that carries over
to a bigger machine is CPU per event, not events/s. Writes bench/results.json["scaleout"].
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import (  # noqa: E402
    children,
    consumed,
    cpu_of,
    create_input_topic,
    machine,
    produce,
    save_result,
    sim_events,
    spawn,
    stop_all,
    worker_env,
)

from stream.cli.embedded import start_infra  # noqa: E402


def run_workers(k: int, events: list[tuple[bytes | None, bytes]], partitions: int, workdir: Path) -> dict:
    infra = start_infra(workdir=workdir)
    procs: list[subprocess.Popen] = []
    try:
        create_input_topic(infra.bootstrap, partitions)
        produce(infra.bootstrap, events)
        n = len(events)
        r = redis.Redis.from_url(infra.redis_url)
        for i in range(k):
            procs.append(spawn([sys.executable, "-m", "stream.cli.main", "worker"], worker_env(infra),
                               workdir / f"worker{i}.log"))
        deadline = time.monotonic() + 1800
        while consumed(r) == 0:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"no progress; see {workdir}")
            time.sleep(0.01)
        first = time.monotonic()
        group = {"workers": [p.pid for p in procs] + [c for p in procs for c in children(p.pid)],
                 "redis": [infra.redis.proc.pid], "broker": [infra.broker.proc.pid]}
        cpu0 = cpu_of(group)
        while consumed(r) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"consumed {consumed(r)} of {n}; see {workdir}")
            time.sleep(0.05)
        seconds = time.monotonic() - first
        cpu1 = cpu_of(group)
        batches = int(float(r.hget("ck:pipeline", "batches") or 0))
    finally:
        stop_all(procs, 30)
        infra.stop()
    conflicts = sum((workdir / f"worker{i}.log").read_text(errors="replace").count("commit conflict")
                    for i in range(k))
    return {"workers": k, "events": n, "events_per_s": round(n / seconds),
            "cpu_us_per_event": {name: round((cpu1[name] - cpu0[name]) / n * 1e6, 1) for name in group},
            "batches": batches, "conflicts": conflicts,
            "conflicts_per_batch": round(conflicts / batches, 4) if batches else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=150)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    events = sim_events(args.agents, args.hours)
    workdir = Path(tempfile.mkdtemp(prefix="callkpi-scaleout-"))
    runs = []
    for k in map(int, args.workers.split(",")):
        runs.append(run_workers(k, events, args.partitions, workdir / f"w{k}"))
        print(json.dumps(runs[-1]), flush=True)
    result = {"sim": f"{args.agents} agents, {args.hours} h", "partitions": args.partitions,
              "runs": runs, "load_before": os.getloadavg(),
              "machine": machine(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not args.no_save:
        save_result("scaleout", result)


if __name__ == "__main__":
    main()

"""CPU per event of the worker's own batch step, without Kafka or Redis in the way.

    python bench/stages.py [--agents N] [--hours H] [--profile]

Runs the real `Pipeline` (validate → load → process → dead-letter → encode the commit) over a
simulated day in delivery order, in batches like the worker's, against an in-memory stand-in
for the store that keeps entity states as JSON (as Redis does; `stream/processing/memory_run.py`),
with the pipeline process's collector policy (`stream/processing/collector.py`: its thresholds,
and young objects frozen after each batch; `--gc young10k`: the thresholds alone, as figures
before 2026-12-02 17:30 were measured; `--gc default`: Python's, as before 06:20), and the CPU
time spent in collections. Prints µs per event and whether the
pipeline ran native or pure (scripts/build-native), optionally a cProfile of the hottest
functions; `--json` prints the figures as one JSON line. Complements `run.py throughput`, which
measures the whole
worker including Faust and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.native import require_fresh  # noqa: E402
from stream.processing import collector  # noqa: E402
from stream.processing.memory_run import drive, sim_messages  # noqa: E402


class CollectorTime:
    """CPU time spent in garbage collections (`gc.callbacks`), and how many ran."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.runs = 0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.cpu_s += time.process_time() - self._started
            self.runs += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=150)
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=5000, help="events per batch (CALLKPI_BATCH_MAX)")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--agent-hours", type=float, default=6.0, help="agent-state horizon")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--sort", default="tottime", help="cProfile order: tottime or cumulative")
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    ap.add_argument("--gc", choices=("pipeline", "young10k", "default"), default="pipeline",
                    help="collector policy: the pipeline process's (default); its earlier one "
                         "(thresholds 10,000/50/1,000,000, nothing frozen); Python's")
    args = ap.parse_args()
    after_batch = None
    if args.gc == "pipeline":
        collector.start()
        after_batch = collector.after_batch
    elif args.gc == "young10k":
        gc.set_threshold(10_000, 50, 1_000_000)
    code = require_fresh()  # a stale native build would measure old code
    messages = sim_messages(args.agents, args.hours, args.partitions)
    prof = cProfile.Profile() if args.profile else None
    collections = CollectorTime()  # from here: the simulator's collections are not the pipeline's
    t0 = time.process_time()  # CPU time: robust to other load on the machine
    if prof:
        prof.enable()
    store = asyncio.run(drive(messages, args.batch, args.agent_hours, after_batch=after_batch))
    if prof:
        prof.disable()
    secs = time.process_time() - t0
    print(f"{len(messages):,} events, {secs:.2f} s CPU: {1e6 * secs / len(messages):.1f} us/event "
          f"({len(messages) / secs:,.0f} events/s), commit payload "
          f"{store.payload_bytes / len(messages):.0f} B/event; pipeline code: {code.describe()}; "
          f"collector ({args.gc}): {collections.cpu_s:.2f} s CPU in {collections.runs} collections")
    if args.json:
        print(json.dumps({"events": len(messages), "cpu_s": round(secs, 3),
                          "us_per_event": round(1e6 * secs / len(messages), 1), "pipeline_code": code.mode,
                          "gc": args.gc, "gc_cpu_s": round(collections.cpu_s, 3), "gc_runs": collections.runs,
                          "compiled": list(code.compiled), "load_avg": os.getloadavg()}), flush=True)
    if prof:
        pstats.Stats(prof).sort_stats(args.sort).print_stats(40)


if __name__ == "__main__":
    main()

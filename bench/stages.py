"""CPU per event of the worker's own batch step, without Kafka or Redis in the way.

    python bench/stages.py [--agents N] [--hours H] [--profile]

Runs the real `Pipeline` (validate → load → process → dead-letter → encode the commit) over a
simulated day in delivery order, in batches like the worker's, against an in-memory stand-in
for the store that keeps entity states as JSON (as Redis does), with the pipeline process's
collector thresholds (`offload.GC_THRESHOLDS`; `--default-gc`: Python's, as figures before
2026-12-02 06:20 were measured). Prints µs per event, optionally a cProfile of the hottest
functions. Complements `run.py throughput`, which measures the whole
worker including Faust and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import sys
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.kpi.contributions import Thresholds  # noqa: E402
from stream.processing.offload import GC_THRESHOLDS  # noqa: E402
from stream.processing.pipeline import Pipeline, RawMessage  # noqa: E402
from stream.sim import FaultConfig, SimConfig, generate  # noqa: E402
from stream.store.commit import CommitBatch, commit_args  # noqa: E402
from stream.store.layout import Layout  # noqa: E402


class MemoryStore:
    """The store's worker-side interface, in memory: states round-trip through JSON."""

    def __init__(self) -> None:
        self.layout = Layout("ck:")
        self.states: dict[str, tuple[int, str]] = {}
        self.offsets: dict[str, int] = {}
        self.payload_bytes = 0
        self.marks: dict = {}
        self.records: dict[str, str] = {}
        self.call_records: dict[str, str] = {}

    async def load(self, tps, keys, check=()):
        offsets = {tp: self.offsets.get(tp, -1) for tp in tps}
        out = {}
        for key in keys:
            v, s = self.states.get(key, (0, ""))
            out[key] = (v, json.loads(s) if s else None)
        return offsets, out, {key: self.states.get(key, (0, ""))[0] for key in check}

    async def watermarks(self) -> dict:
        return dict(self.marks)

    async def agent_record_parts(self, agents: Iterable[str]) -> dict:
        shares = {a: (json.loads(self.records[a]) if a in self.records else None,
                      json.loads(self.call_records[a]) if a in self.call_records else None)
                  for a in agents}
        return {a: s for a, s in shares.items() if s != (None, None)}

    async def commit(self, batch: CommitBatch, now_ms: int) -> None:
        self.marks.update(batch.watermarks)
        self.records.update(batch.agent_records)
        self.call_records.update(batch.agent_call_records)
        args = commit_args(batch, self.layout, now_ms)
        self.payload_bytes += sum(map(len, args))
        for e in batch.entities:
            self.states[e.key] = (e.version + 1, e.json or "")
        for tp, _, new in batch.offsets:
            self.offsets[tp] = new


async def drive(messages: list[RawMessage], batch: int, agent_hours: float = 6.0) -> MemoryStore:
    store = MemoryStore()

    async def dead_letter(key: bytes, value: bytes) -> None:
        return None

    pipeline = Pipeline(store, dead_letter, Thresholds(), state_horizon_ms=72 * 3_600_000,  # type: ignore[arg-type]
                        agent_state_ms=int(agent_hours * 3_600_000), worker_id="bench")
    for i in range(0, len(messages), batch):
        await pipeline.handle(messages[i:i + batch])
    return store


def sim_messages(agents: int, hours: float, partitions: int = 4) -> list[RawMessage]:
    """A simulated run as the worker would consume it from `partitions` partitions."""
    now = int(time.time() * 1000)
    cfg = SimConfig(seed=11, agents=agents, hours=hours, start_ms=now - int(hours * 3_600_000),
                    faults=FaultConfig())
    counts = [0] * partitions
    messages = []
    for d in generate(cfg):
        p = hash(d.key) % partitions
        messages.append(RawMessage("dialer.events", p, counts[p], d.value, now))
        counts[p] += 1
    return messages


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=150)
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=5000, help="events per batch (CALLKPI_BATCH_MAX)")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--agent-hours", type=float, default=6.0, help="agent-state horizon")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--sort", default="tottime", help="cProfile order: tottime or cumulative")
    ap.add_argument("--default-gc", action="store_true",
                    help="Python's collector thresholds, not the pipeline process's")
    args = ap.parse_args()
    if not args.default_gc:
        gc.set_threshold(*GC_THRESHOLDS)
    messages = sim_messages(args.agents, args.hours, args.partitions)
    prof = cProfile.Profile() if args.profile else None
    t0 = time.process_time()  # CPU time: robust to other load on the machine
    if prof:
        prof.enable()
    store = asyncio.run(drive(messages, args.batch, args.agent_hours))
    if prof:
        prof.disable()
    secs = time.process_time() - t0
    print(f"{len(messages):,} events, {secs:.2f} s CPU: {1e6 * secs / len(messages):.1f} us/event "
          f"({len(messages) / secs:,.0f} events/s), commit payload "
          f"{store.payload_bytes / len(messages):.0f} B/event")
    if prof:
        pstats.Stats(prof).sort_stats(args.sort).print_stats(40)


if __name__ == "__main__":
    main()

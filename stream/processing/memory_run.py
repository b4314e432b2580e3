"""The real `Pipeline` over a simulated run, against an in-memory stand-in for the store: no
Kafka, no Redis, only the pipeline process's own work.

`bench/stages.py` measures its CPU per event with this; the native build's exactness test
(tests/integration/test_native_build.py) runs it once compiled and once pure and compares every
batch's commit arguments byte for byte:

    python -m stream.processing.memory_run --agents 20 --hours 1 --digests
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from stream.kpi.contributions import Thresholds
from stream.native import native_status
from stream.processing.pipeline import Pipeline, RawMessage
from stream.sim import FaultConfig, SimConfig, generate
from stream.store.commit import CommitBatch, commit_args
from stream.store.layout import Layout


class MemoryStore:
    """The store's worker-side interface, in memory: states round-trip through JSON (as in
    Redis); every commit's arguments are encoded as for the Lua commit (`commit_args`)."""

    def __init__(self, on_commit: Callable[[list[Any]], None] | None = None) -> None:
        self.layout = Layout("ck:")
        self.states: dict[str, tuple[int, str]] = {}
        self.offsets: dict[str, int] = {}
        self.payload_bytes = 0
        self.marks: dict[Any, Any] = {}
        self.records: dict[str, str] = {}
        self.call_records: dict[str, str] = {}
        self.on_commit = on_commit

    async def load(self, tps: Iterable[str], keys: Iterable[str],
                   check: Iterable[str] = ()) -> tuple[dict[str, int], dict[str, Any], dict[str, int]]:
        offsets = {tp: self.offsets.get(tp, -1) for tp in tps}
        out = {}
        for key in keys:
            v, s = self.states.get(key, (0, ""))
            out[key] = (v, json.loads(s) if s else None)
        return offsets, out, {key: self.states.get(key, (0, ""))[0] for key in check}

    async def watermarks(self) -> dict[Any, Any]:
        return dict(self.marks)

    async def agent_record_parts(self, agents: Iterable[str]) -> dict[str, Any]:
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
        if self.on_commit is not None:
            self.on_commit(args)
        for e in batch.entities:
            self.states[e.key] = (e.version + 1, e.json or "")
        for tp, _, new in batch.offsets:
            self.offsets[tp] = new


async def drive(messages: list[RawMessage], batch: int, agent_hours: float = 6.0,
                store: MemoryStore | None = None, clock: Callable[[], float] = time.time,
                after_batch: Callable[[], None] | None = None) -> MemoryStore:
    """Feed `messages` to a fresh `Pipeline` in batches of `batch`, as the worker would
    (`after_batch`: what the pipeline process does between batches, `collector.after_batch`)."""
    store = store or MemoryStore()

    async def dead_letter(key: bytes, value: bytes) -> None:
        return None

    pipeline = Pipeline(store, dead_letter, Thresholds(), state_horizon_ms=72 * 3_600_000,  # type: ignore[arg-type]
                        agent_state_ms=int(agent_hours * 3_600_000), worker_id="bench", clock=clock)
    for i in range(0, len(messages), batch):
        await pipeline.handle(messages[i:i + batch])
        if after_batch is not None:
            after_batch()
    return store


def sim_messages(agents: int, hours: float, partitions: int = 4, now_ms: int | None = None,
                 seed: int = 11) -> list[RawMessage]:
    """A simulated run with faults (duplicates, late and bad events), as the worker would consume
    it from `partitions` partitions, ending at `now_ms`. Partitioned by a stable hash of the key,
    so that every process sees the same run."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    cfg = SimConfig(seed=seed, agents=agents, hours=hours, start_ms=now - int(hours * 3_600_000),
                    faults=FaultConfig())
    counts = [0] * partitions
    messages = []
    for d in generate(cfg):
        p = zlib.crc32(d.key or b"") % partitions
        messages.append(RawMessage("dialer.events", p, counts[p], d.value, now))
        counts[p] += 1
    return messages


def commit_digests(agents: int, hours: float, batch: int, now_ms: int) -> list[str]:
    """sha256 of every batch's commit arguments (each argument length-prefixed), for a run
    ending at `now_ms` with the clock stopped there: the same code gives the same list."""
    digests: list[str] = []

    def record(args: list[Any]) -> None:
        h = hashlib.sha256()
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            h.update(len(data).to_bytes(8, "big") + data)
        digests.append(h.hexdigest())

    messages = sim_messages(agents, hours, now_ms=now_ms)
    asyncio.run(drive(messages, batch, store=MemoryStore(record), clock=lambda: now_ms / 1000))
    return digests


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--now-ms", type=int, default=1_780_000_000_000, help="the run's end and the stopped clock")
    ap.add_argument("--digests", action="store_true", help="print JSON: the code's mode and every batch's digest")
    args = ap.parse_args()
    digests = commit_digests(args.agents, args.hours, args.batch, args.now_ms)
    if args.digests:
        json.dump({"native": native_status().mode, "pipeline": sys.modules[Pipeline.__module__].__file__,
                   "digests": digests}, sys.stdout)
        print()
    else:
        print(f"{len(digests)} commits")
    return 0


if __name__ == "__main__":
    sys.exit(main())

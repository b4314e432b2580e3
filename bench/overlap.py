"""Do preparing a batch and committing the one before it overlap? (issue 11, goals 1 and 6)

    python bench/overlap.py [--agents 150 --hours 2 --batch 500]

Drives the pipeline process's own path (`Pipeline.check`, then `Overlapped.submit`, as
`offload.py` does) over a simulated run against a fresh redis-server, without Kafka, and
compares the wall time with this process's CPU and Redis's: overlapped, wall ≈ the larger of
the two; taking turns, wall ≈ their sum. Also the time `prepare`'s reads from Redis spent in
flight while a commit was: Redis runs one command at a time, so a read sent during a commit's
script is answered only once the script ends. And the time this process sat idle waiting for
Redis (its event loop in `select`): on a busy machine the wall time mostly measures the other
load, the idle time does not.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from redis_profile import bench_pipeline, cpu_s  # noqa: E402
from stages import sim_messages  # noqa: E402

from stream.cli.embedded import free_port, start_redis  # noqa: E402
from stream.processing.pipelining import Overlapped  # noqa: E402
from stream.store.redis_store import Store  # noqa: E402


class Timed:
    """Wall time of the store's commits, of its reads, and of reads while a commit was out."""

    def __init__(self, store: Store) -> None:
        self.commit_s = self.read_s = self.read_during_commit_s = self.idle_s = 0.0
        self.commits_out = self.reads = self.round_trips = self._reading = 0
        for name in ("load", "watermarks", "agent_record_parts"):
            setattr(store, name, self._read(getattr(store, name)))
        store.commit = self._commit(store.commit)  # type: ignore[method-assign]

    def count_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Time the event loop sat in `select` with nothing to do: waiting for Redis."""
        selector = loop._selector  # type: ignore[attr-defined]
        select = selector.select

        def timed(timeout: float | None = None) -> Any:
            t = time.monotonic()
            try:
                return select(timeout)
            finally:
                self.idle_s += time.monotonic() - t
        selector.select = timed

    def _read(self, fn: Any) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            if fn.__name__ == "agent_record_parts" and not args[0]:
                return await fn(*args, **kwargs)  # no agent without a part: no round trip
            during, t = self.commits_out > 0, time.monotonic()
            self.reads += 1
            self.round_trips += self._reading == 0  # reads sent together: one round trip
            self._reading += 1
            try:
                return await fn(*args, **kwargs)
            finally:
                self._reading -= 1
                dt = time.monotonic() - t
                self.read_s += dt
                if during:
                    self.read_during_commit_s += dt
        return timed

    def _commit(self, fn: Any) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            self.commits_out += 1
            t = time.monotonic()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.commit_s += time.monotonic() - t
                self.commits_out -= 1
        return timed


async def drive(url: str, messages: list[Any], batch: int) -> Timed:
    store = Store(url)
    pipeline = bench_pipeline(store)
    timed = Timed(store)
    timed.count_idle(asyncio.get_running_loop())
    batches = Overlapped(pipeline, lambda seq, error, excluded: None)
    for seq, i in enumerate(range(0, len(messages), batch)):
        await batches.submit(seq, pipeline.check(messages[i:i + batch]))
    await batches.drain()
    await store.close()
    return timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=150)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    messages = sim_messages(args.agents, args.hours)
    port = free_port()
    server = start_redis(port, Path(tempfile.mkdtemp(prefix="overlap-")))
    try:
        redis0, own0, t0 = cpu_s(server.proc.pid), time.process_time(), time.monotonic()
        timed = asyncio.run(drive(f"redis://127.0.0.1:{port}/0", messages, args.batch))
        wall = time.monotonic() - t0
        own, redis_cpu = time.process_time() - own0, cpu_s(server.proc.pid) - redis0
    finally:
        server.stop()
    batches = -(-len(messages) // args.batch)
    print(f"{len(messages):,} events, batches of {args.batch}: wall {wall:.1f} s; CPU: this "
          f"process {own:.1f} s, Redis {redis_cpu:.1f} s (sum {own + redis_cpu:.1f}, larger "
          f"{max(own, redis_cpu):.1f}); commits in flight {timed.commit_s:.1f} s; prepare's reads "
          f"({timed.reads / batches:.1f} calls, {timed.round_trips / batches:.1f} round trips per "
          f"batch) {timed.read_s:.1f} s, of which {timed.read_during_commit_s:.1f} s sent while a commit "
          f"was in flight; this process waited for Redis (idle) {timed.idle_s:.1f} s; load average {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")


if __name__ == "__main__":
    main()

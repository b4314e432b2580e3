"""Exporter cost at scale: /metrics scrape time and series count after a simulated day.

    python bench/scrape.py                         # 5,000 agents, a day of 8 h ending now (the budget)
    python bench/scrape.py --agents 500 --copies 1 # a quick look
    python bench/scrape.py --data DIR              # keep the filled Redis in DIR (day.rdb) ...
    python bench/scrape.py --data DIR --reuse      # ... and measure again without refilling

Redis is filled by the real worker code (`stream.processing.pipeline.Pipeline`, the same batches,
commit script and key layout as `callkpi worker`) fed in-process from the simulator, without the
broker and Faust in between: they do not change what lands in Redis. Simulating and processing a
whole day of 5,000 agents (~12 million events) would take hours on this machine, so the simulated
hour's counter increments are committed again, through the same commit script, shifted 1..N hours
back (`--copies`, default 7): the store then holds a day of minute and hour buckets for every
scope, and the live state (agents, calls) of the simulated hour. Then a real `callkpi serve`
process is scraped over HTTP. Budget (issue #4): a scrape under 1 s and fewer than 50,000 series.

Prints the figures and merges them into bench/results.json under "scrape". Not a test: nothing
here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results import save_result  # noqa: E402  (bench/results.py, beside this)

from stream.cli.embedded import REDIS_TUNING, free_port, redis_binary, wait_for_port  # noqa: E402
from stream.kpi.contributions import Thresholds  # noqa: E402
from stream.kpi.windows import HOUR_MS  # noqa: E402
from stream.processing.pipeline import Pipeline, RawMessage  # noqa: E402
from stream.sim import FaultConfig, SimConfig, generate  # noqa: E402
from stream.store.commit import CommitBatch  # noqa: E402
from stream.store.redis_store import Store  # noqa: E402

TOPIC = "dialer.events"
PARTITIONS = 4
BATCH = 2000
RDB = "day.rdb"
FILLED = "filled.json"


def start_redis(data_dir: Path) -> tuple[subprocess.Popen, str]:
    """A real redis-server whose dump lives in data_dir (loaded at start when present)."""
    port = free_port()
    proc = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
         "--dbfilename", RDB, "--save", "", "--appendonly", "no", "--protected-mode", "no",
         *REDIS_TUNING],
        stdout=open(data_dir / "redis.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, 60, proc)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 300
    while True:  # a reused dump is served only once it is loaded (LOADING errors until then)
        try:
            client.ping()
            break
        except redis.exceptions.BusyLoadingError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    client.close()
    return proc, url


class DayStore(Store):
    """The real store; every commit's counter increments are committed again `copies` times,
    shifted back by whole hours, so a short simulation fills a day of buckets."""

    def __init__(self, url: str, copies: int, shift_ms: int) -> None:
        super().__init__(url)
        self.copies = copies
        self.shift_ms = shift_ms

    async def commit(self, batch: CommitBatch, now_ms: int) -> None:
        await super().commit(batch, now_ms)
        if self.copies and batch.counters:
            earlier = {(scope, minute - k * self.shift_ms): deltas
                       for k in range(1, self.copies + 1)
                       for (scope, minute), deltas in batch.counters.items()}
            await super().commit(CommitBatch(counters=earlier, notify=False), now_ms)


async def fill(redis_url: str, agents: int, hours: float, copies: int, seed: int) -> dict:
    """Feed the last `hours` of a simulated shift through the worker's batch step into Redis, in
    delivery order. The shift goes on past now (agents log out in its last minutes): what Redis
    holds is a center in full swing, every agent logged in."""
    now = int(time.time() * 1000)
    cfg = SimConfig(seed=seed, agents=agents, hours=hours + 0.5, start_ms=now - int(hours * HOUR_MS),
                    faults=FaultConfig())
    store = DayStore(redis_url, copies, int(hours * HOUR_MS))

    async def no_dead_letters(key: bytes, value: bytes) -> None:
        """No faults are simulated, so nothing is rejected; nothing to send."""

    pipeline = Pipeline(store, no_dead_letters, Thresholds(), state_horizon_ms=72 * 3_600_000,
                        worker_id="bench")
    offsets = [0] * PARTITIONS
    batch: list[RawMessage] = []
    n, t0, last_report = 0, time.monotonic(), time.monotonic()
    for d in generate(cfg):
        if d.deliver_ms > now:
            break
        part = zlib.crc32(d.key or b"") % PARTITIONS
        batch.append(RawMessage(TOPIC, part, offsets[part], d.value, d.deliver_ms))
        offsets[part] += 1
        if len(batch) == BATCH:
            await pipeline.handle(batch)
            n += len(batch)
            batch = []
            if time.monotonic() - last_report > 30:
                last_report = time.monotonic()
                print(f"  {n:,} events, {n / (last_report - t0):,.0f}/s", file=sys.stderr)
    if batch:
        await pipeline.handle(batch)
        n += len(batch)
    await store.close()
    redis.Redis.from_url(redis_url, socket_timeout=None).save()  # minutes for a big day: no timeout
    return {"events": n, "fill_s": round(time.monotonic() - t0, 1), "data_end_ms": now}


def serve_at(redis_url: str, port: int, data_end_ms: int, collector: bool = True,
             cpu_pipe: Any = None) -> None:
    """`callkpi serve`'s app (the same one) on the filled Redis, with its clock set back to the end
    of the simulated hour so that the 5m/15m/1h windows hold data as they would live (filling
    takes many minutes). Runs in a child process, like the real server. `collector`: with serve's
    collector policy (`collector.serving`), as `callkpi serve` runs; off, Python's default.
    `cpu_pipe` (one end of a `multiprocessing.Pipe`): each message sent on it is answered with
    this process's CPU time so far and the part of it spent in garbage collections
    (`answer_cpu`)."""
    from aiohttp import web

    from stream.cli.commands import build_api
    from stream.readers.service import create_service_app, run_service
    from stream.settings import Settings

    if cpu_pipe is not None:
        answer_cpu(cpu_pipe)
    ctx = build_api(Settings.from_env(redis_url=redis_url, timezone="UTC"))
    behind = time.time() - data_end_ms / 1000
    ctx.clock = lambda: time.time() - behind
    if collector:
        run_service(ctx, "127.0.0.1", port)
    else:
        web.run_app(create_service_app(ctx), host="127.0.0.1", port=port, print=None, access_log=None)


def answer_cpu(pipe: Any) -> None:
    """Answer each message on `pipe` with (`time.process_time()`, CPU seconds in garbage
    collections so far: `stages.CollectorTime`), from a thread of its own. process_time covers
    all of this process's threads to the nanosecond; /proc's counters tick every 10 ms, as
    coarse as the differences a request's CPU is compared by."""
    import threading

    from stages import CollectorTime  # (bench/stages.py, beside this)
    collections = CollectorTime()

    def answer() -> None:
        while True:
            pipe.recv()
            pipe.send((time.process_time(), collections.cpu_s))
    threading.Thread(target=answer, daemon=True, name="cpu-probe").start()


def measure(redis_url: str, scrapes: int, data_end_ms: int) -> dict:
    """Time full /metrics scrapes of that server over HTTP, as Prometheus does."""
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve_at, args=(redis_url, port, data_end_ms))
    server.start()
    times, body = [], ""
    try:
        wait_for_port(port, 60)
        with httpx.Client(timeout=120) as client:
            for _ in range(scrapes):
                t = time.monotonic()
                body = client.get(f"http://127.0.0.1:{port}/metrics").text
                times.append(time.monotonic() - t)
    finally:
        server.terminate()
        server.join(30)
    per_family: Counter[str] = Counter()
    family = ""
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            family = line.split()[2]
        elif line and not line.startswith("#"):
            per_family[family] += 1
    return {"series": sum(per_family.values()), "bytes": len(body.encode()),
            "scrape_s_median": round(statistics.median(times), 3),
            "scrape_s_max": round(max(times), 3), "scrape_s_first": round(times[0], 3),
            "scrape_s_all": [round(t, 3) for t in times],
            "scrapes": scrapes, "largest_families": dict(per_family.most_common(6))}


def add_data_options(p: argparse.ArgumentParser) -> None:
    """`--data`/`--reuse`: a filled Redis measured again without the minutes of filling."""
    p.add_argument("--data", type=Path, default=None, help="keep Redis' dump here (default: a temp dir)")
    p.add_argument("--reuse", action="store_true", help="measure the dump in --data, do not refill")


def data_dir(p: argparse.ArgumentParser, args: argparse.Namespace, prefix: str) -> Path:
    """The directory of Redis' dump (made if new); `--reuse` needs one filled by an earlier run."""
    if args.reuse and not (args.data and (args.data / RDB).exists() and (args.data / FILLED).exists()):
        p.error(f"--reuse needs --data with the {RDB} and {FILLED} of an earlier run")
    workdir: Path = args.data or Path(tempfile.mkdtemp(prefix=prefix))
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=5000)
    p.add_argument("--hours", type=float, default=1.0, help="simulated hours (default 1)")
    p.add_argument("--copies", type=int, default=7,
                   help="commit the simulated counters again this many times, each --hours earlier")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--scrapes", type=int, default=7)
    p.add_argument("--no-save", action="store_true", help="print only, leave bench/results.json alone")
    add_data_options(p)
    args = p.parse_args()
    workdir = data_dir(p, args, "callkpi-scrape-")
    redis_proc, redis_url = start_redis(workdir)
    try:
        result: dict = {"agents": args.agents, "simulated_hours": args.hours,
                        "day_hours": args.hours * (args.copies + 1)}
        if args.reuse:
            filled = json.loads((workdir / FILLED).read_text())
            result["reused"] = True
        else:
            filled = asyncio.run(fill(redis_url, args.agents, args.hours, args.copies, args.seed))
            (workdir / FILLED).write_text(json.dumps(filled))
        result.update({k: v for k, v in filled.items() if k != "data_end_ms"})
        result.update(measure(redis_url, args.scrapes, filled["data_end_ms"]))
    finally:
        redis_proc.terminate()
        redis_proc.wait(30)
    result["budget"] = {"scrape_s": 1.0, "series": 50_000}
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(json.dumps(result, indent=2))
    if not args.no_save:
        save_result("scrape", result)


if __name__ == "__main__":
    main()

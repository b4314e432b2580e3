"""Several workers on one stream: throughput, CPU per event per process kind, conflicts.

    python bench/scaleout.py [--agents 150 --hours 4 --workers 1,2,4 --partitions 8 --rounds 1]

For each worker count: a fresh broker and Redis, a `--partitions`-partition topic, that many
`callkpi worker`s in one consumer group, started and settled in the group *before* anything is
published (so no worker reads alone while the others join); then the same simulated file is
published at once (a backlog, keyed as the simulator keys it: call events by call, agent events
by agent, so one agent's events arrive on several partitions) and consumed to its last event.

The file's first 3,000 events warm the workers up (each starts its pipeline process with its
first batch); the rest is measured, from the start of publishing to the last event consumed: events/s; CPU µs per event of
each process kind from /proc (the workers' Faust processes, their pipeline processes, Redis, the
broker, and this script's producer); cores busy (their CPU seconds over wall seconds) and
**events/s per core busy**, for the whole deployment and for the worker processes alone; commit
conflicts (each redoes its batch: one retry each) per committed batch and per 1,000 events, by
the kind of key that conflicted (workers' logs), halvings of batches that conflicted three times;
the mean batch and the share of events prepared twice. On 2 cores, 2 and 4 workers share them
with Redis and the broker: events/s cannot grow there, CPU per event and per-core rates are the
figures that carry to a bigger machine. `--rounds 2` runs the worker counts again in reverse
order (a noisy stretch of the shared machine then hits every count). `--rate R --seconds S`:
publish S seconds' worth at R events/s instead (live traffic: small batches, whose Redis cost
per event is higher, and which shrink as workers are added at the same total rate). Writes
bench/results.json["scaleout"] (or `--key`; the sitting before moves into its `earlier` list).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import (  # noqa: E402  (bench/run.py, beside this)
    TOPIC,
    children,
    cpu_s,
    create_input_topic,
    machine,
    pipeline_counters,
    produce,
    save_result,
    sim_events,
    spawn,
    stop_all,
    worker_env,
)

from stream.cli.embedded import start_infra  # noqa: E402

SETTLE_S = 12.0
"""After every worker has registered: the group's last rebalance (about half the 6-s session
timeout) and each worker's first fetch."""
WARM_UP = 3000
"""Events published before the measurement, so that every worker has its pipeline process."""
WORKER_KINDS = ("faust", "pipeline")
CONFLICT = re.compile(r"commit conflict \(attempt \d+, retrying\): (.*)$")


def conflict_kind(message: str) -> str:
    """`entity changed: ck:st:agent-calls:<id>` → `entity st:agent-calls`: what kind of check
    failed (entity version, offset, team) on what kind of key."""
    what, _, key = message.partition(" changed: ")
    parts = key.split(":")[1:]  # without the key prefix (`ck:`)
    return f"{what} {':'.join(parts[:2]) if parts[:1] == ['st'] else ':'.join(parts[:1])}".strip()


def from_logs(logs: list[Path]) -> tuple[Counter[str], int]:
    """Conflicts by kind of key, and batches committed in halves, from the workers' logs."""
    kinds: Counter[str] = Counter()
    halvings = 0
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            m = CONFLICT.search(line)
            if m:
                kinds[conflict_kind(m.group(1))] += 1
            elif "committing it in halves" in line:
                halvings += 1
    return kinds, halvings


def process_group(procs: list[subprocess.Popen], redis_pid: int, broker_pid: int) -> dict[str, list[int]]:
    return {"faust": [p.pid for p in procs], "pipeline": [c for p in procs for c in children(p.pid)],
            "redis": [redis_pid], "broker": [broker_pid]}


def cpu_by_pid(group: dict[str, list[int]]) -> dict[int, float]:
    return {pid: cpu_s(pid) for pids in group.values() for pid in pids}


def keyed_by_agent(events: list[tuple[bytes | None, bytes]]) -> list[tuple[bytes | None, bytes]]:
    """Every event that names an agent keyed by its agent, the rest as before (a call by its
    call until an agent takes it): what a dialer can do, since it knows the agent at connect.
    All of an agent's state changes then arrive on one partition."""
    out = []
    for key, value in events:
        agent = json.loads(value).get("agent_id")
        out.append((agent.encode() if agent else key, value))
    return out


def produce_fast(bootstrap: str, events: list[tuple[bytes | None, bytes]],
                 rate: float | None = None) -> None:
    """Publish with librdkafka (about 2 µs of CPU per event; kafka-python's producer costs 70,
    which on 2 cores would take a share of the cores the workers are measured on): all at once,
    or in 100-ms slices of `rate` events/s, like dialers producing live."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5 if rate else 20,
                  "batch.size": 1 << 20, "acks": 1, "queue.buffering.max.messages": 1_000_000})
    step = max(1, int(rate / 10)) if rate else len(events)
    start = time.monotonic()
    for i in range(0, len(events), step):
        for key, value in events[i:i + step]:
            while True:
                try:
                    p.produce(TOPIC, value=value, key=key)
                    break
                except BufferError:
                    p.poll(0.05)
        p.poll(0)
        if rate and (lag := start + (i + step) / rate - time.monotonic()) > 0:
            time.sleep(lag)
    if p.flush(120):
        raise RuntimeError("the producer could not deliver everything")


def warm_up(r: redis.Redis, bootstrap: str, first: list[tuple[bytes | None, bytes]],
            procs: list[subprocess.Popen], workdir: Path) -> None:
    """Publish the file's first events and wait until they are consumed and every worker has
    started its pipeline process (it starts with the worker's first batch, and its start-up,
    imports included, is not the cost of an event)."""
    produce(bootstrap, first)
    deadline = time.monotonic() + 180
    while (pipeline_counters(r).get("consumed", 0) < len(first)
           or any(not children(p.pid) for p in procs)):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"warm-up did not finish; logs in {workdir}")
        time.sleep(0.2)
    time.sleep(2)


def wait_for_workers(r: redis.Redis, procs: list[subprocess.Popen], workdir: Path) -> None:
    deadline = time.monotonic() + 180
    while len(r.hgetall("ck:workers")) < len(procs):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"workers did not start; logs in {workdir}")
        time.sleep(0.5)
    time.sleep(SETTLE_S)


def run_workers(k: int, events: list[tuple[bytes | None, bytes]], partitions: int,
                workdir: Path, rate: float | None = None,
                extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    infra = start_infra(workdir=workdir)
    procs: list[subprocess.Popen] = []
    prepares = workdir / "prepares"  # bench/count_prepares, if on PYTHONPATH (--count-prepares)
    prepares.mkdir(exist_ok=True)
    logs = [workdir / f"worker{i}.log" for i in range(k)]
    try:
        create_input_topic(infra.bootstrap, partitions)
        r = redis.Redis.from_url(infra.redis_url)
        env = {**worker_env(infra), "CALLKPI_PARTITIONS": str(partitions), **(extra_env or {})}
        if COUNT_PREPARES:
            env["CALLKPI_BENCH_PREPARES"] = str(prepares)
        for i in range(k):
            procs.append(spawn([sys.executable, "-m", "stream.cli.main", "worker"],
                               {**env, "CALLKPI_WORKER_ID": f"w{i}",
                                "CALLKPI_DATA_DIR": str(workdir / f"w{i}")}, logs[i]))
        wait_for_workers(r, procs, workdir)
        warm_up(r, infra.bootstrap, events[:WARM_UP], procs, workdir)
        events = events[WARM_UP:]
        n = len(events)
        group = process_group(procs, infra.redis.proc.pid, infra.broker.proc.pid)
        load_before = os.getloadavg()
        before, cpu0, own0 = pipeline_counters(r), cpu_by_pid(group), time.process_time()
        prepared0 = prepare_calls(prepares)
        started = time.monotonic()
        produce_fast(infra.bootstrap, events, rate)
        producer_s = time.process_time() - own0
        deadline = started + 1800
        while pipeline_counters(r).get("consumed", 0) - before.get("consumed", 0) < n:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"run did not finish; logs in {workdir}")
            time.sleep(0.05)
        seconds = time.monotonic() - started
        # A pipeline process starts with the worker's first batch: take the pids again.
        group = process_group(procs, infra.redis.proc.pid, infra.broker.proc.pid)
        cpu1, after, prepared = cpu_by_pid(group), pipeline_counters(r), prepare_calls(prepares) - prepared0
        all_alive = all(p.poll() is None for p in procs)
    finally:
        stop_all(procs, 30)
        infra.stop()
    cpu = {name: sum(cpu1[p] - cpu0.get(p, 0.0) for p in pids) for name, pids in group.items()}
    cpu["producer"] = producer_s
    d = {key: after.get(key, 0) - before.get(key, 0)
         for key in ("batches", "commit_conflicts", "ahead_kept", "ahead_redone")}
    batches, conflicts = int(d["batches"]), int(d["commit_conflicts"])
    kinds, halvings = from_logs(logs)
    served = sum(cpu[name] for name in group)  # the deployment's processes, not the producer
    worker_cpu = sum(cpu[name] for name in WORKER_KINDS)
    mean_batch = n / batches if batches else 0.0
    return {
        "workers": k, "published": f"{rate:g} events/s" if rate else "backlog", "events": n, "seconds": round(seconds, 2), "events_per_s": round(n / seconds),
        "cpu_us_per_event": {name: round(v / n * 1e6, 1) for name, v in cpu.items()},
        "worker_us_per_event": round(worker_cpu / n * 1e6, 1),
        "cores_busy": round(served / seconds, 2),
        "events_per_s_per_core": round(n / served),
        "worker_events_per_s_per_core": round(n / worker_cpu),
        "batches": batches, "mean_batch": round(mean_batch),
        "conflicts": conflicts, "conflicts_per_batch": round(conflicts / batches, 3) if batches else None,
        "conflicts_per_1000_events": round(1000 * conflicts / n, 2),
        "conflicts_by_key": dict(kinds), "halvings": halvings,
        "redone_share": round(conflicts * mean_batch / n, 3),
        # the decisions on batches prepared ahead of a redone one (0 before they were counted)
        "ahead_kept": int(d["ahead_kept"]), "ahead_redone": int(d["ahead_redone"]),
        **({"prepares": prepared, "prepares_per_batch": round(prepared / batches, 3),
            "redone_per_conflict": round((prepared - batches) / conflicts, 2) if conflicts else None}
           if COUNT_PREPARES and batches else {}),
        "all_alive": all_alive, "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


COUNT_PREPARES = False
"""--count-prepares: count every preparation (bench/count_prepares/sitecustomize.py)."""


def prepare_calls(directory: Path) -> int:
    """Preparations so far, summed over the pipeline processes (bench/count_prepares)."""
    return sum(int(f.read_text() or 0) for f in directory.iterdir())


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per worker count, the median over the rounds of the figures that compare."""
    out: dict[str, dict[str, float]] = {}
    for k in sorted({r["workers"] for r in runs}):
        mine = [r for r in runs if r["workers"] == k]
        med = {key: statistics.median(r[key] for r in mine)
               for key in ("events_per_s", "worker_us_per_event", "cores_busy", "events_per_s_per_core",
                           "worker_events_per_s_per_core", "conflicts_per_batch",
                           "conflicts_per_1000_events", "redone_share", "mean_batch")}
        for kind in mine[0]["cpu_us_per_event"]:
            med[f"{kind}_us_per_event"] = statistics.median(r["cpu_us_per_event"][kind] for r in mine)
        out[str(k)] = {key: round(v, 3) for key, v in med.items()}
    return out


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{result['events']:,} events ({result['sim']}, {result['published']}), "
          f"{result['partitions']} partitions, "
          f"medians of {result['rounds']} round(s)\n")
    print("| workers | events/s | Faust µs/event | pipeline µs/event | Redis µs/event | broker µs/event "
          "| cores busy | events/s per core busy | worker events/s per worker core "
          "| conflicts per batch | per 1,000 events | mean batch |")
    print("|" + "---|" * 12)
    for k, s in result["summary"].items():
        print(f"| {k} | {s['events_per_s']:,.0f} | {s['faust_us_per_event']:g} | {s['pipeline_us_per_event']:g} "
              f"| {s['redis_us_per_event']:g} | {s['broker_us_per_event']:g} | {s['cores_busy']:g} "
              f"| {s['events_per_s_per_core']:,.0f} | {s['worker_events_per_s_per_core']:,.0f} "
              f"| {s['conflicts_per_batch']:g} | {s['conflicts_per_1000_events']:g} | {s['mean_batch']:,.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=150)
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--rate", type=float, default=None,
                    help="publish at this many events/s (live traffic) instead of all at once")
    ap.add_argument("--seconds", type=float, default=None,
                    help="with --rate: publish only this many seconds' worth of the file")
    ap.add_argument("--key-by-agent", action="store_true",
                    help="key every event that names an agent by the agent (not by its call)")
    ap.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                    help="a setting for every worker, e.g. CALLKPI_BATCH_MAX=1000 (repeatable)")
    ap.add_argument("--key", default="scaleout", help="its key in bench/results.json")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--count-prepares", action="store_true",
                    help="count every preparation (puts bench/count_prepares first on the workers' "
                         "PYTHONPATH): preparations per batch, batches redone per conflict")
    args = ap.parse_args()
    if args.count_prepares:
        global COUNT_PREPARES
        COUNT_PREPARES = True
        here = str(Path(__file__).resolve().parent / "count_prepares")
        os.environ["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])
    events = sim_events(args.agents, args.hours)
    if args.key_by_agent:
        events = keyed_by_agent(events)
    if args.rate and args.seconds:
        events = events[:WARM_UP + int(args.rate * args.seconds)]
    workdir = Path(tempfile.mkdtemp(prefix="callkpi-scaleout-"))
    counts = [int(k) for k in args.workers.split(",")]
    extra = dict(item.split("=", 1) for item in args.worker_env)
    runs = []
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for i in range(args.rounds):
        for k in (counts if i % 2 == 0 else counts[::-1]):
            runs.append({"round": i, **run_workers(k, events, args.partitions, workdir / f"r{i}w{k}", args.rate,
                                                 extra)})
            print(json.dumps(runs[-1]), flush=True)
    result = {"sim": f"{args.agents} agents, {args.hours} h", "events": len(events) - WARM_UP,
              "partitions": args.partitions, "rounds": args.rounds, "worker_env": extra,
              "published": f"{args.rate:g} events/s" if args.rate else "backlog",
              "keyed": "agent events and call events with an agent by agent, the rest by call"
              if args.key_by_agent else "call events by call, agent events by agent (the simulator's)", "summary": summary(runs),
              "runs": runs, "machine": machine(), "started_at": started,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print_table(result)
    if not args.no_save:
        save_result(args.key, result, keep_earlier=True)


if __name__ == "__main__":
    main()

"""End-to-end benchmark of one worker process, broker to Redis, on the embedded broker.

    python bench/run.py throughput   # (a) events/s with every KPI on, next to the peers a user
                                     #     would pick instead (bench/peers/), one table
    python bench/run.py latency      # (b) p50/p99 publish → visible in the API at 2,000 events/s
    python bench/run.py day          # (c) worker RSS after a simulated day of 5,000 agents,
                                     #     plus the /metrics scrape time and series count
Prints the figures and writes them to bench/results.json (BENCHMARKS.md explains them).
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results import save_result  # noqa: E402,F401  (bench/results.py, beside this; the other scripts import it from here)

from stream.cli.embedded import LocalInfra, create_topics, free_port, start_infra, wait_for_port  # noqa: E402
from stream.native import require_fresh  # noqa: E402
from stream.sim import FaultConfig, SimConfig, generate  # noqa: E402

TOPIC = "dialer.events"


def machine() -> str:
    """What a result was measured on, stored with it (the figures depend on it)."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def stop_all(procs: list[subprocess.Popen], timeout: float) -> None:
    """Terminate the processes, and kill those still running `timeout` seconds later, with
    their process group (`spawn` starts each in its own: a worker's pipeline process too).
    Before the broker and Redis stop: a worker stopped after them waits for ever for the acks
    of its batches in flight, and leaked workers spinning on a dead broker loaded every later
    benchmark of the sitting (seen 2026-12-03: fifteen of them, load average 4)."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)


def produce(bootstrap: str, values: list[tuple[bytes | None, bytes]]) -> None:
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=512 * 1024,
                      max_request_size=1 << 20)
    for key, value in values:
        p.send(TOPIC, key=key, value=value)
    p.flush()
    p.close()


def sim_events(agents: int, hours: float, seed: int = 11) -> list[tuple[bytes | None, bytes]]:
    now = int(time.time() * 1000)
    cfg = SimConfig(seed=seed, agents=agents, hours=hours, start_ms=now - int(hours * 3_600_000),
                    faults=FaultConfig())
    return [(d.key, d.value) for d in generate(cfg)]


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def worker_env(infra: LocalInfra) -> dict[str, str]:
    return {"CALLKPI_BOOTSTRAP": infra.bootstrap, "CALLKPI_REDIS_URL": infra.redis_url,
            "CALLKPI_SESSION_TIMEOUT_S": "6"}


def consumed(r: redis.Redis) -> int:
    return int(float(r.hget("ck:pipeline", "consumed") or 0))


def rss_mb(pid: int) -> float:
    """RSS of a process and its children (the worker is a Faust process plus its pipeline
    process and multiprocessing's resource tracker)."""
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(procs: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_s(p) for p in pids) for name, pids in procs.items()}


def run_worker_until(infra: LocalInfra, n: int, workdir: Path, timeout: float = 3600) -> tuple[float, subprocess.Popen]:
    """Start one worker; seconds from its first commit to `n` consumed messages."""
    r = redis.Redis.from_url(infra.redis_url)
    proc = spawn([sys.executable, "-m", "stream.cli.main", "worker"], worker_env(infra),
                 workdir / "worker.log")
    deadline = time.monotonic() + timeout
    while consumed(r) == 0:
        time.sleep(0.01)
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"worker made no progress; see {workdir / 'worker.log'}")
    first = time.monotonic()
    procs = {"worker (Faust)": [proc.pid], "pipeline process": children(proc.pid),
             "broker": [infra.broker.proc.pid], "redis": [infra.redis.proc.pid]}
    cpu0 = cpu_of(procs)
    while consumed(r) < n:
        time.sleep(0.05)
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker consumed {consumed(r)} of {n}")
    cpu1 = cpu_of(procs)
    run_worker_until.cpu = {k: round(cpu1[k] - cpu0[k], 2) for k in procs}  # type: ignore[attr-defined]
    return time.monotonic() - first, proc


def stream_sim_to_kafka(bootstrap: str, agents: int, hours: float, seed: int) -> dict:
    """Publish a simulated run without holding it in memory; returns events and seconds."""
    from kafka import KafkaProducer
    now = int(time.time() * 1000)
    cfg = SimConfig(seed=seed, agents=agents, hours=hours, start_ms=now - int(hours * 3_600_000),
                    faults=FaultConfig())
    p = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=512 * 1024,
                      max_request_size=1 << 20)
    t0, n = time.monotonic(), 0
    for d in generate(cfg):
        p.send(TOPIC, key=d.key, value=d.value)
        n += 1
    p.flush()
    p.close()
    return {"events": n, "seconds": time.monotonic() - t0}


def run_worker_sampling_rss(infra: LocalInfra, n: int, workdir: Path) -> tuple[float, subprocess.Popen,
                                                                    list[tuple[int, float]]]:
    """Like run_worker_until, sampling (consumed, RSS MB) every 5 s."""
    r = redis.Redis.from_url(infra.redis_url)
    proc = spawn([sys.executable, "-m", "stream.cli.main", "worker"], worker_env(infra),
                 workdir / "worker.log")
    samples: list[tuple[int, float]] = []
    first = None
    while True:
        done = consumed(r)
        if done and first is None:
            first = time.monotonic()
        samples.append((done, rss_mb(proc.pid)))
        if done >= n:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited; see {workdir / 'worker.log'}")
        time.sleep(5)
    return time.monotonic() - (first or time.monotonic()), proc, samples


PEERS = {
    # name: (script in bench/peers, what it computes, needs Redis)
    "aiokafka": ("bare_aiokafka.py", "bare aiokafka consumer + `json.loads`, nothing else", False),
    "confluent": ("bare_confluent.py", "bare confluent-kafka consumer + `json.loads`", False),
    "quix": ("quix_app.py", "Quix Streams app: 1-min tumbling windows per campaign and per agent "
             "of dialed / attempts / connected / handled / talk+hold / wrap-ups, dedupe by "
             "`event_id`, results to Redis (24 h grace)", True),
    "faust": ("bare_faust.py", "a do-nothing Faust agent (`async for value in stream`)", False),
    "faust_take": ("faust_take.py", "the same, batching with `take_events(2000, 0.1)` (the "
                   "earlier benchmark's form)", False),
}
WORKER = "callkpi"
WORKER_WHAT = "`callkpi worker`: every catalog KPI, six scope kinds, exact under replay"


def create_input_topic(bootstrap: str, partitions: int) -> None:
    """The input topic with `retention.ms` set explicitly: tansu's DescribeConfigs returns only
    configs set explicitly, and Quix Streams needs that one (engineering notes)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    create_topics(bootstrap, {"dialer.events.dlq": 1})
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin")
    try:
        admin.create_topics([NewTopic(TOPIC, partitions, 1,
                                      topic_configs={"retention.ms": str(7 * 86_400_000)})])
    finally:
        admin.close()


def run_peer(name: str, infra: LocalInfra, n: int, workdir: Path, timeout: float = 1800) -> dict:
    """One peer over the whole topic: events/s and CPU µs per event of each process, from its
    first message to its last."""
    script, _, needs_redis = PEERS[name]
    outdir = workdir / name
    outdir.mkdir(parents=True)
    argv = [sys.executable, str(ROOT / "bench" / "peers" / script), infra.bootstrap, TOPIC, str(n),
            str(outdir)] + ([infra.redis_url] if needs_redis else [])
    proc = spawn(argv, {}, outdir / "log.txt")
    deadline = time.monotonic() + timeout
    while not (outdir / "first").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} saw no message; see {outdir / 'log.txt'}")
        time.sleep(0.01)
    infra_procs = {"redis": [infra.redis.proc.pid], "broker": [infra.broker.proc.pid]}
    cpu0 = cpu_of(infra_procs)
    while not (outdir / "result.json").exists():
        if proc.poll() is not None and not (outdir / "result.json").exists():
            raise RuntimeError(f"{name} exited early; see {outdir / 'log.txt'}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{name} did not finish; see {outdir / 'log.txt'}")
        time.sleep(0.02)
    cpu1 = cpu_of(infra_procs)
    result = json.loads((outdir / "result.json").read_text())
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
    cpu = {"process": result["cpu_s"], **{k: cpu1[k] - cpu0[k] for k in infra_procs}}
    return {"events_per_s": round(n / result["seconds"]),
            "cpu_us_per_event": {k: round(v / n * 1e6, 1) for k, v in cpu.items()}}


def run_callkpi(infra: LocalInfra, n: int, workdir: Path) -> dict:
    """The worker's rate and CPU per process, its mean batch, and where Redis's time went
    (`INFO commandstats`: µs per event of each command, the scripts' own commands included in
    their EVALSHA's time and counted again on their own)."""
    r = redis.Redis.from_url(infra.redis_url)
    r.config_resetstat()
    seconds, proc = run_worker_until(infra, n, workdir)
    proc.terminate()
    proc.wait(30)
    cpu = run_worker_until.cpu  # type: ignore[attr-defined]
    counters = r.hgetall("ck:pipeline")
    batches = float(counters.get(b"batches", 0) or 0)
    stats = r.info("commandstats")
    return {"events_per_s": round(n / seconds),
            "cpu_us_per_event": {k: round(v / n * 1e6, 1) for k, v in cpu.items()},
            "mean_batch": round(n / batches) if batches else None,
            "redis_command_us_per_event": {
                name.removeprefix("cmdstat_"): round(int(v["usec"]) / n, 2)
                for name, v in sorted(stats.items(), key=lambda kv: -int(kv[1]["usec"]))
                if int(v["usec"]) / n >= 0.05}}


def throughput(args: argparse.Namespace) -> dict:
    """Every system over the same file, in one run: `repeat` rounds, each on a fresh broker and
    Redis holding the file once; within a round every system reads the whole topic (its own
    consumer group), and the order rotates from round to round, so that a noisy stretch of the
    (virtual) machine hits all alike. The figure of each is its median over the rounds."""
    workdir = Path(tempfile.mkdtemp(prefix="callkpi-bench-"))
    events = sim_events(args.agents, args.hours)
    n = len(events)
    systems = [s for s in [*PEERS, WORKER] if s in args.systems]
    rounds: list[dict[str, dict]] = []
    for i in range(args.repeat):
        infra = start_infra(workdir=workdir / f"round{i}")
        try:
            create_input_topic(infra.bootstrap, 4)
            produce(infra.bootstrap, events)
            order = systems[i % len(systems):] + systems[:i % len(systems)]
            this: dict[str, dict] = {}
            for name in order:
                sub = workdir / f"round{i}" / name
                sub.mkdir(parents=True, exist_ok=True)
                this[name] = (run_callkpi(infra, n, sub) if name == WORKER
                              else run_peer(name, infra, n, sub))
                print(json.dumps({"round": i, "system": name, **this[name]}), flush=True)
        finally:
            infra.stop()
        rounds.append(this)
    summary = {}
    for name in systems:
        rates = [r[name]["events_per_s"] for r in rounds]
        keys = rounds[0][name]["cpu_us_per_event"].keys()
        summary[name] = {
            "events_per_s": round(statistics.median(rates)), "runs_events_per_s": rates,
            "cpu_us_per_event": {k: round(statistics.median(r[name]["cpu_us_per_event"][k]
                                                            for r in rounds), 1) for k in keys}}
    result = {"events": n, "sim": f"{args.agents} agents, {args.hours} h", "rounds": rounds,
              "systems": summary, "load_before": os.getloadavg(), "pipeline_code": args.pipeline_code}
    if WORKER in summary:
        for peer in ("quix", "faust"):
            if peer in summary:
                result[f"callkpi_vs_{peer}"] = round(summary[WORKER]["events_per_s"]
                                                     / summary[peer]["events_per_s"], 2)
    print_table(result)
    return result


def print_table(result: dict) -> None:
    """The issue's table, with this run's figures."""
    print(f"\n{result['events']:,} events ({result['sim']}), median of "
          f"{len(result['rounds'])} alternating rounds; callkpi's pipeline code: {result['pipeline_code']}\n")
    print("| system | what it computes | events/s | CPU µs per event |")
    print("|---|---|---|---|")
    for name, s in result["systems"].items():
        what = WORKER_WHAT if name == WORKER else PEERS[name][1]
        c = s["cpu_us_per_event"]
        if name == WORKER:
            cpu = (f"{c['worker (Faust)']:g} worker + {c['pipeline process']:g} pipeline process, "
                   f"**{c['redis']:g} Redis** (broker {c['broker']:g})")
        else:
            cpu = f"{c['process']:g} (+ Redis {c['redis']:g}, broker {c['broker']:g})"
        print(f"| {name} | {what} | {s['events_per_s']:,} | {cpu} |")
    for key in ("callkpi_vs_quix", "callkpi_vs_faust"):
        if key in result:
            print(f"{key}: {result[key]}")


def latency(args: argparse.Namespace) -> dict:
    """Background load at `rate` events/s; probes publish a fresh campaign's first dial and
    poll Redis and the API until each shows it: publish → committed (the worker's part) and
    publish → visible in the API (plus serve's part). Also the worker's own batch sizes and
    publish → commit histogram over all events, and the load average before and after."""
    workdir = Path(tempfile.mkdtemp(prefix="callkpi-bench-"))
    infra = start_infra(workdir=workdir)
    http_port = free_port()
    procs: list[subprocess.Popen] = []
    load_before = os.getloadavg()
    try:
        create_topics(infra.bootstrap, {TOPIC: 4, "dialer.events.dlq": 1})
        env = worker_env(infra)
        procs.append(spawn([sys.executable, "-m", "stream.cli.main", "worker"], env, workdir / "w.log"))
        procs.append(spawn([sys.executable, "-m", "stream.cli.main", "serve", "--port", str(http_port)],
                           env, workdir / "s.log"))
        wait_for_port(http_port, 30)
        load = sim_events(args.agents, args.hours, seed=5)
        from kafka import KafkaProducer
        # Probes go out at once; the load comes from a process of its own (bench/load_gen.py).
        producer = KafkaProducer(bootstrap_servers=infra.bootstrap, acks=1, linger_ms=0)
        # Warm up: the group join takes a few seconds.
        r = redis.Redis.from_url(infra.redis_url)
        producer.send(TOPIC, value=load[0][1]).get(10)
        while consumed(r) == 0:
            time.sleep(0.1)
        records = workdir / "load.pickle"
        records.write_bytes(pickle.dumps(load[1:]))
        generator = subprocess.Popen([sys.executable, str(ROOT / "bench" / "load_gen.py"),
                                      infra.bootstrap, TOPIC, str(args.rate), str(records)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        worker = procs[0].pid
        measured = {"faust_process": [worker], "pipeline_process": children(worker),
                    "serve": [procs[1].pid], "redis": [infra.redis.proc.pid],
                    "broker": [infra.broker.proc.pid], "load_generator": [generator.pid]}
        before, cpu0 = pipeline_counters(r), cpu_of(measured)
        started = time.monotonic()
        samples, committed = [], []
        client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}")
        for i in range(args.probes):
            now = int(time.time() * 1000)
            event = {"event_id": f"probe-{i}", "type": "call.dialed", "ts": now,
                     "call_id": f"probe-{i}", "campaign_id": f"probe-{i}"}
            total_key = f"ck:t:campaign:probe-{i}"
            sent = time.monotonic()
            producer.send(TOPIC, value=json.dumps(event).encode())
            producer.flush()
            seen_committed = False
            while True:
                if not seen_committed and r.exists(total_key):
                    committed.append(time.monotonic() - sent)
                    seen_committed = True
                k = client.get("/api/v1/kpis", params={"scope": f"campaign:probe-{i}",
                                                       "window": "5m"}).json()["kpis"]
                if k["dialed"] == 1:
                    samples.append(time.monotonic() - sent)
                    if not seen_committed:
                        committed.append(samples[-1])
                    break
                time.sleep(0.02)  # polling faster would load the 2-core machine
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        after, cpu1 = pipeline_counters(r), cpu_of(measured)
        backlog = unapplied(infra.bootstrap, r)
        out, _ = generator.communicate("", timeout=120)
        published, load_s = (float(x) for x in out.split())
        return {"rate_events_per_s": args.rate, "agents": args.agents, "probes": len(samples),
                **quantiles("", samples), **quantiles("committed_", committed),
                "probes_over_1s": sum(1 for x in samples if x > 1.0),
                "slow_probes": {i: round(x, 3) for i, x in enumerate(samples) if x > 0.5},  # which: warm-up or steady
                "published_per_s": round(published / load_s),  # produce() calls: queued, not yet delivered
                "unapplied_at_end": backlog,  # in the broker, not yet in Redis: the worker behind
                # the load must outlast the probes (else the last probes meet an idle worker, and
                # events_per_s is the stream's size over a longer window): raise --hours if not
                "load_s": round(load_s, 1), "probing_s": round(elapsed + 2, 1),
                "worker": worker_stats(before, after, elapsed),
                "cpu_us_per_event": {k: round((cpu1[k] - cpu0[k]) * 1e6 / max(1.0, after.get("consumed", 0)
                                                                         - before.get("consumed", 0)), 1)
                                     for k in measured},
                "cpu_share_of_a_core": {k: round((cpu1[k] - cpu0[k]) / elapsed, 2) for k in measured},
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in os.getloadavg()]}
    finally:
        stop_all(procs, 15)
        infra.stop()


def unapplied(bootstrap: str, r: redis.Redis) -> int:
    """Records the broker holds beyond Redis's applied offsets, over every partition."""
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or ())]
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    applied: dict[bytes, bytes] = r.hgetall("ck:offsets")  # type: ignore[assignment]
    return sum(max(0, ends[tp] - 1 - int(applied.get(f"{TOPIC}:{tp.partition}".encode(), -1)))
               for tp in tps)


def quantiles(prefix: str, samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    q = statistics.quantiles(samples, n=100)
    return {f"{prefix}p50_s": round(q[49], 3), f"{prefix}p99_s": round(q[98], 3),
            f"{prefix}max_s": round(samples[-1], 3)}


def pipeline_counters(r: redis.Redis) -> dict[str, float]:
    raw: dict[bytes, bytes] = r.hgetall("ck:pipeline")  # type: ignore[assignment]
    return {k.decode(): float(v) for k, v in raw.items()}


def worker_stats(before: dict[str, float], after: dict[str, float], seconds: float) -> dict:
    """Over the probing: events and batches committed, mean batch size, and the worker's own
    publish → commit histogram (cumulative share of events by bound)."""
    d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    batches = d.get("batches", 0) or 1
    n = d.get("latency_count", 0) or 1
    buckets = sorted(((k.split(":", 1)[1], v) for k, v in d.items() if k.startswith("latency_le:")),
                     key=lambda kv: float(kv[0]))
    share, run = {}, 0.0
    for bound, v in buckets:
        run += v
        share[bound] = round(run / n, 4)
    return {"events_per_s": round(d.get("consumed", 0) / seconds), "batches_per_s":
            round(d.get("batches", 0) / seconds, 1), "mean_batch": round(d.get("consumed", 0) / batches),
            "mean_commit_latency_s": round(d.get("latency_sum", 0) / n, 3),
            "commit_latency_share_le": share}


def day(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="callkpi-bench-"))
    infra = start_infra(workdir=workdir)
    http_port = free_port()
    try:
        create_topics(infra.bootstrap, {TOPIC: 4, "dialer.events.dlq": 1})
        # Generate and publish as a stream (a day of 5,000 agents does not fit in memory as a
        # list), then let one worker consume it all, sampling its RSS all along.
        total = stream_sim_to_kafka(infra.bootstrap, args.agents, args.hours, seed=3)
        gen_s = total["seconds"]
        secs, proc, rss_samples = run_worker_sampling_rss(infra, total["events"], workdir)
        worker_rss = rss_samples[-1][1]
        events = range(total["events"])
        r = redis.Redis.from_url(infra.redis_url)
        redis_mb = r.info("memory")["used_memory"] / 2**20
        serve = spawn([sys.executable, "-m", "stream.cli.main", "serve", "--port", str(http_port)],
                      worker_env(infra), workdir / "s.log")
        wait_for_port(http_port, 30)
        scrape = []
        body = ""
        for _ in range(5):
            s = time.monotonic()
            body = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=60).text
            scrape.append(time.monotonic() - s)
        series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        proc.terminate()
        serve.terminate()
        return {"agents": args.agents, "hours": args.hours, "events": len(events),
                "generate_s": round(gen_s, 1), "process_s": round(secs, 1),
                "events_per_s": round(len(events) / secs), "worker_rss_mb": round(worker_rss, 1),
                "worker_rss_max_mb": round(max(m for _, m in rss_samples), 1),
                "worker_rss_mb_by_events": [[n, round(m, 1)] for n, m in rss_samples[::max(1, len(rss_samples) // 12)]],
                "redis_used_mb": round(redis_mb, 1), "metrics_series": series,
                "scrape_s_median": round(statistics.median(scrape), 3)}
    finally:
        infra.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["throughput", "latency", "day"])
    p.add_argument("--agents", type=int, default=None)
    p.add_argument("--hours", type=float, default=None)
    p.add_argument("--rate", type=float, default=2000)
    p.add_argument("--probes", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3, help="throughput: alternating runs of each")
    p.add_argument("--systems", default=",".join([*PEERS, WORKER]),
                   help="throughput: comma-separated subset of " + ", ".join([*PEERS, WORKER]))
    args = p.parse_args()
    args.systems = args.systems.split(",")
    defaults = {"throughput": (150, 8.0), "latency": (1000, 2.0), "day": (5000, 8.0)}[args.what]
    args.agents = args.agents or defaults[0]
    args.hours = args.hours or defaults[1]
    # the worker runs native or pure (scripts/build-native): figures compare only like with like
    # (a stale build stops here, as the worker would)
    args.pipeline_code = require_fresh().mode
    print(f"callkpi's pipeline code: {require_fresh().describe()}", flush=True)
    result = {"throughput": throughput, "latency": latency, "day": day}[args.what](args)
    result["machine"] = machine()
    result["pipeline_code"] = args.pipeline_code
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(json.dumps(result, indent=2))
    save_result(result_key(args), result, keep_earlier=True)  # a run adds to the history, never erases it


def result_key(args: argparse.Namespace) -> str:
    """Where a run's result goes in bench/results.json: a throughput run over a subset of the
    systems gets a key of its own (`throughput_quix_callkpi`), so that it never replaces the
    table measured with every peer."""
    if args.what == "latency":
        return f"latency_{args.rate:g}"
    if args.what == "throughput" and set(args.systems) != {*PEERS, WORKER}:
        return "throughput_" + "_".join(s for s in [*PEERS, WORKER] if s in args.systems)
    return args.what


if __name__ == "__main__":
    main()

"""Test harness: real processes (tansu broker, redis-server, callkpi worker/serve) on free ports."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import httpx

from stream.cli.embedded import LocalInfra, Managed, create_topics, free_port, start_redis, wait_for_port
from stream.sim import Delivery, FaultConfig, SimConfig, Simulator

PARTITIONS = 4


@dataclass
class Service:
    """A running pipeline: infra + worker(s) + HTTP server, with helpers to feed and query it."""

    infra: LocalInfra
    env: dict[str, str]
    http_port: int
    workers: list[Managed] = field(default_factory=list)
    server: Managed | None = None
    topic: str = "dialer.events"
    extra: list[Managed] = field(default_factory=list)
    """Other processes of the test (a second serve, a rebuild), stopped with the service."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Managed:
        log = self.infra.workdir / f"{name}.log"
        proc = subprocess.Popen([sys.executable, "-m", "stream.cli.main", *argv],
                                env={**os.environ, **self.env, **(env or {})},
                                stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        return Managed(name, proc, 0, self.infra.workdir, log)

    def run_cli(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a `callkpi` command against this pipeline and capture its output."""
        return subprocess.run([sys.executable, "-m", "stream.cli.main", *argv],
                              env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=timeout)

    def start_worker(self, n: int = 1) -> Managed:
        name = f"worker-{len(self.workers) + 1}"
        w = self.spawn(name, ["worker"], {"CALLKPI_WORKER_ID": name,
                                          "CALLKPI_DATA_DIR": str(self.infra.workdir / name)})
        self.workers.append(w)
        return w

    def start_server(self) -> Managed:
        self.server = self.spawn("serve", ["serve", "--port", str(self.http_port)])
        wait_for_port(self.http_port, timeout=30, proc=self.server.proc)
        return self.server

    def start_extra_server(self, name: str, env: dict[str, str]) -> tuple[Managed, str]:
        """Another `serve` (e.g. on another key prefix); returns it and its base URL. Stopped
        with the service."""
        port = free_port()
        server = self.spawn(name, ["serve", "--port", str(port)], env)
        self.extra.append(server)
        wait_for_port(port, timeout=30, proc=server.proc)
        return server, f"http://127.0.0.1:{port}"

    def kill_worker(self, worker: Managed) -> None:
        """SIGKILL a worker and its pipeline (batch) process, as a machine failure would."""
        kids = children_of(worker.proc.pid)
        worker.proc.send_signal(signal.SIGKILL)
        for kid in kids:
            try:
                os.kill(kid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        worker.proc.wait(10)
        wait_until(lambda: not any(os.path.exists(f"/proc/{k}") for k in kids), 15,
                   "the killed worker's pipeline process lives on")

    # -- Redis faults (the service must be made with redis_aof=True) -------------------------

    def kill_redis(self) -> None:
        """SIGKILL Redis: what it had not yet written to its AOF is lost (everysec)."""
        self.infra.redis.proc.send_signal(signal.SIGKILL)
        self.infra.redis.proc.wait(10)

    def restart_redis(self) -> None:
        """Start Redis again on its port and directory: it loads its AOF."""
        self.infra.redis = start_redis(self.infra.redis.port, self.infra.workdir, persist=True)

    def snapshot_redis(self, name: str = "snapshot.rdb") -> Path:
        """A backup as an operator takes one: an RDB snapshot copied aside."""
        import redis
        r = redis.Redis.from_url(self.infra.redis_url)
        try:
            r.save()
            path = Path(str(r.config_get("dir")["dir"])) / "dump.rdb"
        finally:
            r.close()
        copy = self.infra.workdir / name
        shutil.copyfile(path, copy)
        return copy

    def restore_redis(self, snapshot: Path) -> None:
        """Restore Redis from a backup, as documented for Redis: stop it, replace its data by
        the snapshot, start it without AOF (so it loads the RDB), then turn the AOF on again
        (Redis rewrites it from memory)."""
        import redis
        self.kill_redis()
        workdir = self.infra.workdir
        (workdir / "appendonly.aof").unlink(missing_ok=True)
        shutil.copyfile(snapshot, workdir / "dump.rdb")
        self.infra.redis = start_redis(self.infra.redis.port, workdir, persist=False)
        r = redis.Redis.from_url(self.infra.redis_url)
        try:
            wait_until(lambda: r.info("persistence")["loading"] == 0, 30, "Redis still loading")
            r.config_set("appendonly", "yes")
            wait_until(lambda: (lambda i: i["aof_enabled"] == 1 and
                                not i["aof_rewrite_in_progress"] and
                                not i["aof_rewrite_scheduled"])(r.info("persistence")),
                       30, "the AOF rewrite after the restore did not finish")
        finally:
            r.close()

    def publish(self, values: Iterable[bytes], keys: Iterable[bytes | None] | None = None) -> int:
        from kafka import KafkaProducer
        producer = KafkaProducer(bootstrap_servers=self.infra.bootstrap, acks=1, linger_ms=5,
                                 max_request_size=1 << 20)
        n = 0
        keys = list(keys) if keys is not None else None
        for i, v in enumerate(values):
            producer.send(self.topic, value=v, key=keys[i] if keys else None)
            n += 1
        producer.flush()
        producer.close()
        return n

    def publish_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """The simulator's deliveries, each with its key (a call's events on one partition)."""
        return self.publish([d.value for d in deliveries], [d.key for d in deliveries])

    def feed(self, deliveries: Sequence[Delivery], timeout: float = 120) -> int:
        """Publish the deliveries and wait until they are consumed; returns the time publishing
        began (the reference calculator's `now`: nothing was open before it)."""
        published_at = int(time.time() * 1000)
        self.publish_deliveries(deliveries)
        self.wait_consumed(len(deliveries), timeout=timeout)
        return published_at

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(self.url + path, params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    def pipeline_counter(self, name: str, prefix: str = "ck:") -> float:
        import redis
        r = redis.Redis.from_url(self.infra.redis_url, decode_responses=True)
        try:
            return float(r.hget(f"{prefix}pipeline", name) or 0)
        except (redis.ConnectionError, redis.BusyLoadingError):
            return -1.0  # Redis is down or loading (a fault test's restart)
        finally:
            r.close()

    def pipeline_counters(self, prefix: str = "ck:") -> dict[str, float]:
        import redis
        r = redis.Redis.from_url(self.infra.redis_url, decode_responses=True)
        try:
            return {str(k): float(v) for k, v in r.hgetall(f"{prefix}pipeline").items()}
        finally:
            r.close()

    def wait_consumed(self, n: int, timeout: float = 120) -> None:
        """Wait until the workers have committed `n` input messages (replays excluded)."""
        wait_until(lambda: self.pipeline_counter("consumed") >= n, timeout,
                   lambda: f"consumed {self.pipeline_counter('consumed')} of {n}; "
                           f"logs in {self.infra.workdir}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.infra.workdir.glob("*.log")))

    def stop(self) -> None:
        for m in [*self.workers, *([self.server] if self.server else []), *self.extra]:
            m.stop()
        self.infra.stop()


def bench_module(name: str) -> ModuleType:
    """A script of bench/ (not a package) loaded as a module, e.g. bench/scrape.py for `fill`."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"callkpi_bench_{name}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hour_ranges(first_hour: int, last_hour: int) -> list[tuple[int, int]]:
    """Every whole hour of `[first_hour, last_hour)`, and the whole stretch (ranges wholly in
    the past, so agents' open states are clipped at the range end on both sides)."""
    hours = [(h, h + 3_600_000) for h in range(first_hour, last_hour, 3_600_000)]
    return hours + [(first_hour, last_hour)]


def same(a: Any, b: Any) -> bool:
    """KPI values equal: integers exactly, floats to 1e-9, dicts (per reason) key by key,
    a missing key as 0, None only as None."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, dict) or isinstance(b, dict):
        keys = set(a) | set(b)
        return all(same(a.get(k, 0.0), b.get(k, 0.0)) for k in keys)
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def topic_records(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record on `topic` so far (JSON values), read from the start: a dead-letter topic."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=5000)
            return [json.loads(m.value) for msgs in batch.values() for m in msgs]
        finally:
            await consumer.stop()
    return asyncio.run(read())


def wait_until(cond: Callable[[], bool], timeout: float, why: Callable[[], str] | str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s: {why() if callable(why) else why}")


def make_service(workdir: Path, extra_env: dict[str, str] | None = None,
                 redis_aof: bool = False) -> Service:
    """A broker, a Redis (with `appendonly yes` when `redis_aof`) and topics; no worker yet."""
    from stream.cli.embedded import start_infra
    infra = start_infra(workdir=workdir)
    if redis_aof:
        infra.redis.stop()
        infra.redis = start_redis(infra.redis.port, workdir, persist=True)
    env = {"CALLKPI_BOOTSTRAP": infra.bootstrap, "CALLKPI_REDIS_URL": infra.redis_url,
           "CALLKPI_SESSION_TIMEOUT_S": "6",
           "CALLKPI_PARTITIONS": str(PARTITIONS), **(extra_env or {})}
    create_topics(infra.bootstrap, {"dialer.events": PARTITIONS, "dialer.events.dlq": 1})
    return Service(infra, env, free_port())


@contextmanager
def running_service(workdir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Service]:
    """make_service with one worker and `callkpi serve` running, all stopped on exit."""
    svc = make_service(workdir, extra_env)
    try:
        svc.start_worker()
        svc.start_server()
        yield svc
    finally:
        svc.stop()


class Simulated(NamedTuple):
    deliveries: list[Delivery]
    stats: Counter[str]
    """What the simulator injected: late and duplicate deliveries, invalid events by reason."""


def faulty_stretch(seed: int, agents: int, hours: float, start_ms: int, **config: Any) -> Simulated:
    """`hours` of simulated traffic from `start_ms` with every delivery fault on, checked to
    hold late and duplicate deliveries (what the tests that use it are about)."""
    sim = Simulator(SimConfig(seed=seed, agents=agents, hours=hours, start_ms=start_ms,
                              faults=FaultConfig.all_on(), **config))
    deliveries = list(sim)
    assert sim.stats["late"] and sim.stats["duplicates"], sim.stats
    return Simulated(deliveries, sim.stats)


def jsonl(events: Iterable[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


def children_of(pid: int) -> list[int]:
    """The direct children of a process (a worker's pipeline process)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


# -- comparing a store with the reference calculator ------------------------------------------

HOUR_MS = 3_600_000


def kpi_differences(url: str, expected: Callable[[str, int, int], dict[str, Any]],
                    scopes: list[str], first_hour: int, last_hour: int) -> tuple[int, list[str]]:
    """Every KPI of every scope, hour by hour and for the whole day, from the API at `url`
    against `expected(scope, start, end)`; returns (values compared, differences)."""
    from stream.contract import format_ts
    failures: list[str] = []
    compared = 0
    with httpx.Client(base_url=url, timeout=60) as client:
        for start, end in hour_ranges(first_hour, last_hour):
            for scope in scopes:
                want = expected(scope, start, end)
                got = client.get("/api/v1/kpis", params={
                    "scope": scope, "from": format_ts(start), "to": format_ts(end)}).json()["kpis"]
                for name, value in want.items():
                    compared += 1
                    if name not in got:
                        failures.append(f"{name} missing from the API")
                    elif not same(got[name], value):
                        failures.append(f"{name} {scope} [{format_ts(start)}, {format_ts(end)}): "
                                        f"got {got[name]!r} expected {value!r}")
    return compared, failures


def api_kpis(url: str) -> Callable[[str, int, int], dict[str, Any]]:
    """`expected` for kpi_differences from another API (a live store against a rebuilt one)."""
    from stream.contract import format_ts
    client = httpx.Client(base_url=url, timeout=60)

    def kpis(scope: str, start: int, end: int) -> dict[str, Any]:
        return client.get("/api/v1/kpis", params={
            "scope": scope, "from": format_ts(start), "to": format_ts(end)}).json()["kpis"]
    return kpis


# -- invalid input of every shape --------------------------------------------------------------

def invalid_messages(now_ms: int, seed: int = 0, copies: int = 3) -> list[bytes]:
    """Messages a misbehaving producer sends, `copies` of each shape (distinct bytes): random
    bytes, non-UTF-8, JSON that is not an object, 10,000-deep nesting (bare and inside an
    event), over 64 KiB, NaN and infinity, wrong types, booleans for numbers, unknown types,
    missing fields. Each is rejected (never counted, never crashes a worker)."""
    import random

    from stream.contract import format_ts
    rng = random.Random(seed)
    out: list[bytes] = []
    for i in range(copies):
        tag = f"bad-{seed}-{i}"
        event = {"event_id": f"{tag}-e", "type": "call.connected", "ts": format_ts(now_ms - 600_000),
                 "call_id": f"{tag}-c", "campaign_id": "bad-campaign", "agent_id": "bad-agent",
                 "wait_ms": 5}

        def variant(suffix: str, event: dict[str, Any] = event, tag: str = tag,
                    **changes: Any) -> bytes:
            return json.dumps({**event, "event_id": f"{tag}-{suffix}", **changes}).encode()
        out += [
            rng.randbytes(rng.randint(1, 400)),
            b'{"event_id":"' + tag.encode() + b'-\xff\xfe","type":"call.dialed"}',
            json.dumps([event]).encode(), json.dumps(tag).encode(), str(i).encode(), b"null",
            b"[" * 10_000 + b"]" * 10_000,
            b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
            variant("deep", extra=None).replace(b'"extra": null', b'"extra": ' + b"[" * 10_000 + b"]" * 10_000),
            variant("big", padding="x" * 70_000),
            variant("nan", wait_ms=float("nan")),
            variant("inf", wait_ms=float("inf")),
            variant("str", wait_ms="5"),
            variant("bool", wait_ms=True),
            variant("type", type="call.teleported"),
            json.dumps({k: v for k, v in event.items() if k != "call_id"}).encode(),
        ]
    return out

"""Test harness: real processes (tansu broker, redis-server, callkpi worker/serve) on free ports."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from stream.cli.embedded import LocalInfra, Managed, create_topics, free_port, wait_for_port

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

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(self.url + path, params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    def pipeline_counter(self, name: str) -> float:
        import redis
        r = redis.Redis.from_url(self.infra.redis_url, decode_responses=True)
        try:
            return float(r.hget("ck:pipeline", name) or 0)
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
        for m in [*self.workers, *( [self.server] if self.server else [])]:
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


def make_service(workdir: Path, extra_env: dict[str, str] | None = None) -> Service:
    from stream.cli.embedded import start_infra
    infra = start_infra(workdir=workdir)
    env = {"CALLKPI_BOOTSTRAP": infra.bootstrap, "CALLKPI_REDIS_URL": infra.redis_url,
           "CALLKPI_SESSION_TIMEOUT_S": "6",
           "CALLKPI_PARTITIONS": str(PARTITIONS), **(extra_env or {})}
    create_topics(infra.bootstrap, {"dialer.events": PARTITIONS, "dialer.events.dlq": 1})
    return Service(infra, env, free_port())


def jsonl(events: Iterable[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]

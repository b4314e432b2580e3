"""Worker heartbeats do not outlive their workers: `callcenter_pipeline_worker_up` (and the
CallkpiWorkerDown alert) speaks of the workers that exist. A worker's id defaults to
`<host>:<pid>`, so every restart is a new id: an entry left behind by a worker that stopped
cleanly alerted forever after each deploy, and one left by a crash stayed forever too."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.harness import Service, make_service, wait_until

pytestmark = pytest.mark.integration
HOUR_MS = 3_600_000


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A broker and a Redis; each test starts its worker when its store is set up."""
    with contextlib.ExitStack() as stack:
        svc = make_service(tmp_path)
        stack.callback(svc.stop)
        yield svc


def heartbeats(svc: Service) -> dict[str, str]:
    r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
    return {str(k): str(v) for k, v in r.hgetall("ck:workers").items()}


def test_a_worker_stopped_cleanly_takes_its_heartbeat_along(service: Service) -> None:
    worker = service.start_worker()
    wait_until(lambda: "worker-1" in heartbeats(service), 90, "the worker never beat")
    worker.proc.send_signal(signal.SIGTERM)
    worker.proc.wait(60)
    assert "worker-1" not in heartbeats(service), service.logs()


def test_a_silent_worker_is_forgotten_after_an_hour_and_a_recent_one_kept(service: Service) -> None:
    now = int(time.time() * 1000)
    r = redis.Redis.from_url(service.infra.redis_url, decode_responses=True)
    r.hset("ck:workers", mapping={"crashed-yesterday": now - 24 * HOUR_MS,
                                  "crashed-just-now": now - 10 * 60_000})
    service.start_worker()
    wait_until(lambda: "worker-1" in heartbeats(service), 90, "the worker never beat")
    wait_until(lambda: "crashed-yesterday" not in heartbeats(service), 30,
               lambda: f"still there: {heartbeats(service)}")
    assert "crashed-just-now" in heartbeats(service)  # still reported down: it may come back

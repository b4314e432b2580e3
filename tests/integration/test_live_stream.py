"""The push stream the wallboard listens to (`GET /api/v1/stream`), against a real `callkpi serve`
and Redis: every store commit is announced, the last one of a burst too (a page must not keep
stale numbers until its next poll), and the stream opens with the reconnect delay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.harness import Service, make_service

pytestmark = pytest.mark.integration
CHANNEL = "ck:updates"  # what the commit script publishes to (docs/redis-layout.md)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = make_service(Path(tmp_path_factory.mktemp("stream")))
    try:
        svc.start_server()
        yield svc
    finally:
        svc.stop()


def events(resp: httpx.Response) -> Iterator[str]:
    """Event names (`update`) and comments (`:ping`, `retry`) as they arrive."""
    for line in resp.iter_lines():
        if line.startswith("event: "):
            yield line[7:]
        elif line.startswith((":", "retry:")):
            yield line.replace(" ", "")


def next_update(stream: Iterator[str], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    for name in stream:
        if name == "update":
            return
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no `update` within {within}s")


def test_every_commit_is_announced_the_last_of_a_burst_too(service: Service) -> None:
    r = redis.Redis.from_url(service.infra.redis_url)
    try:
        with httpx.stream("GET", f"{service.url}/api/v1/stream", timeout=httpx.Timeout(30)) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            stream = events(resp)
            assert next(stream) == "retry:2000"  # written once the server has subscribed
            r.publish(CHANNEL, "commit 1")
            next_update(stream)
            # A burst right after: inside the minimum interval, so it is announced when the
            # interval ends, once, rather than dropped.
            for n in range(2, 6):
                r.publish(CHANNEL, f"commit {n}")
            next_update(stream)
    finally:
        r.close()

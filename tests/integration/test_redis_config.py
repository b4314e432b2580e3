"""Redis misconfiguration, on a real redis-server: a worker refuses to run on an evicting Redis
(unless overridden), and with `noeviction` at the memory limit it waits and retries (counted)
instead of crash-looping on OOM errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stream.cli.embedded import free_port, start_redis
from stream.processing.pipelining import run_until_committed
from tests.integration.test_commit_faults import calls, pipeline, snapshot

pytestmark = pytest.mark.integration


@pytest.fixture()
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = start_redis(free_port(), tmp_path)
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


def worker(url: str, tmp_path: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stream.cli.main", "worker"],
        env={**os.environ, "CALLKPI_REDIS_URL": url, "CALLKPI_BOOTSTRAP": f"127.0.0.1:{free_port()}",
             "CALLKPI_DATA_DIR": str(tmp_path / "faust"), **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_worker_refuses_an_evicting_redis_and_says_what_to_set(redis_url: str, tmp_path: Path) -> None:
    redis.Redis.from_url(redis_url).config_set("maxmemory-policy", "allkeys-lru")
    proc = worker(redis_url, tmp_path)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"the worker ran on an evicting Redis:\n{out[-2000:]}")
    assert proc.returncode != 0
    assert "maxmemory-policy noeviction" in out and "allkeys-lru" in out, out[-2000:]
    assert "CALLKPI_ALLOW_REDIS_EVICTION=1" in out


def test_the_override_lets_a_worker_run_on_an_evicting_redis(redis_url: str, tmp_path: Path) -> None:
    """Past the check, the worker goes on to Kafka (none here: it stops on that, not on Redis)."""
    redis.Redis.from_url(redis_url).config_set("maxmemory-policy", "allkeys-lru")
    proc = worker(redis_url, tmp_path, CALLKPI_ALLOW_REDIS_EVICTION="1")
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "allowed by CALLKPI_ALLOW_REDIS_EVICTION" in out, out[-2000:]
    assert "Set `maxmemory-policy noeviction`" not in out


def test_at_the_memory_limit_commits_wait_and_retry_then_apply_exactly(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    batch = calls(6)
    asyncio.run(pipeline(redis_url, "ref:").handle(batch))
    reference = {k[len(b"ref:"):]: v for k, v in snapshot(r, "ref:").items() if b"pipeline" not in k}
    r.config_set("maxmemory", 1)  # noeviction (the default): every write is refused

    async def run() -> float:
        p = pipeline(redis_url, "oom:")
        job = asyncio.create_task(run_until_committed(p, p.check(batch)))
        await asyncio.sleep(3)
        assert not job.done(), job.exception() if job.done() else None
        r.config_set("maxmemory", 0)  # memory freed: the retry goes through
        await asyncio.wait_for(job, 30)
        return p.oom_errors

    left = asyncio.run(run())
    assert left == 0  # every OOM error was counted in the commit that went through
    assert float(r.hget("oom:pipeline", "redis_oom_errors") or 0) >= 1
    got = {k[len(b"oom:"):]: v for k, v in snapshot(r, "oom:").items() if b"pipeline" not in k}
    assert got.keys() == reference.keys()
    for key in got:
        if key.startswith((b"t:", b"m:", b"h:")):
            assert r.hgetall(b"oom:" + key) == r.hgetall(b"ref:" + key), key


def test_a_worker_warns_about_compact_hour_hashes_at_512(redis_url: str, tmp_path: Path) -> None:
    """A compact-hash setting that makes commits slow (Redis 6's default of 512) is said at
    start, with what to set; the worker still runs (the setting costs CPU, not exactness)."""
    redis.Redis.from_url(redis_url).config_set("hash-max-ziplist-entries", 512)
    proc = worker(redis_url, tmp_path)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "hash-max-listpack-entries is 512" in out and "Set it to 128" in out, out[-2000:]
    assert "Set `maxmemory-policy noeviction`" not in out

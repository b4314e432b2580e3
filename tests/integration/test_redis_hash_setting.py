"""A worker on a Redis whose compact-hash setting makes commits slow (Redis 6's default of 512)
says so at start, with what to set; it still runs (the setting costs CPU, not exactness)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stream.cli.embedded import free_port, start_redis
from tests.integration.test_redis_config import worker

pytestmark = pytest.mark.integration


@pytest.fixture()
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = start_redis(free_port(), tmp_path)
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


def test_a_worker_warns_about_compact_hour_hashes_at_512(redis_url: str, tmp_path: Path) -> None:
    redis.Redis.from_url(redis_url).config_set("hash-max-ziplist-entries", 512)
    proc = worker(redis_url, tmp_path)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "hash-max-listpack-entries is 512" in out and "Set it to 128" in out, out[-2000:]
    assert "Set `maxmemory-policy noeviction`" not in out

"""How the commit keeps Redis's per-event work small, on a real Redis: a minute hash becomes a hash
table once it holds `PROMOTE_AT` fields (whatever the server's compact-hash setting: a compact
hash is searched field by field by every increment), while day and total hashes stay compact
(400 days of history), and the counters are exactly what the events say."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stream.cli.embedded import free_port, start_redis
from stream.store.commit import PROMOTE_AT
from tests.integration.test_commit_faults import calls, pipeline

pytestmark = pytest.mark.integration


@pytest.fixture()
def r(tmp_path: Path) -> Iterator[redis.Redis]:
    server = start_redis(free_port(), tmp_path)
    try:
        yield redis.Redis(port=server.port, decode_responses=True)
    finally:
        server.stop()


def test_minute_hashes_become_hash_tables_and_day_hashes_stay_compact(r: redis.Redis) -> None:
    r.config_set("hash-max-ziplist-entries", 512)  # Redis 6.2's default: compact up to 512 fields
    url = f"redis://127.0.0.1:{r.connection_pool.connection_kwargs['port']}/0"
    batch = calls(30)
    for i in range(0, len(batch), 10):  # many commits, each adding fields to the same hashes
        asyncio.run(pipeline(url, "ck:").handle(batch[i:i + 10]))
    minute_hashes = list(r.scan_iter("ck:m:*"))
    assert minute_hashes
    big = [k for k in minute_hashes if r.hlen(k) >= PROMOTE_AT]
    assert big, {k: r.hlen(k) for k in minute_hashes}
    assert all(r.object("encoding", k) == "hashtable" for k in big)
    assert all(r.object("encoding", k) in ("ziplist", "listpack") for k in minute_hashes if r.hlen(k) < PROMOTE_AT)
    assert not any("~promote" in r.hkeys(k) for k in big)
    for pattern in ("ck:d:*", "ck:t:*"):
        keys = list(r.scan_iter(pattern))
        assert keys and all(r.object("encoding", k) in ("ziplist", "listpack") for k in keys)
    # 30 answered, connected, ended calls: every counter as the events say, in every bucket kind
    totals = r.hgetall("ck:t:campaign:c1")
    assert (totals["dialed"], totals["connected"], totals["talk_ms"]) == ("30", "30", str(30 * 30000))
    minutes: list[dict[str, str]] = [r.hgetall(k) for k in r.scan_iter("ck:m:campaign:c1:*")]  # type: ignore[misc]
    assert sum(int(v) for h in minutes for f, v in h.items() if f.endswith(":talk_ms")) == 30 * 30000
    assert sum(int(v) for h in minutes for f, v in h.items() if f.endswith(":dialed")) == 30


def test_an_increment_near_2_to_53_is_exact(r: redis.Redis) -> None:
    """Stored integers past 15 digits take HINCRBY (a double would round the sum)."""
    url = f"redis://127.0.0.1:{r.connection_pool.connection_kwargs['port']}/0"
    batch = calls(2)
    asyncio.run(pipeline(url, "ck:").handle(batch[:4]))
    r.hset("ck:t:campaign:c1", "talk_ms", 2**53 + 1)
    asyncio.run(pipeline(url, "ck:").handle(batch[4:]))
    assert r.hget("ck:t:campaign:c1", "talk_ms") == str(2**53 + 1 + 30000)

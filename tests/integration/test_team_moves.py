"""What a team move writes in a real Redis: the agent's history (minute, hour, day buckets and
totals) leaves the old team for the new one with its expiries, the new team enters the month
index of each moved day, and both teams' newest-minute marks go to 59 where a minute hash moved.
An agent with no history yet (a login at the start of a shift: its first team) moves nothing
and writes no bucket or mark of either team."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from stream.kpi.windows import DAY_MS, HOUR_MS, MINUTE_MS
from stream.state.batch import TeamMove
from stream.store.commit import CommitBatch
from stream.store.redis_store import Store

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Europe/Berlin")
NOW = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
EARLIER = NOW - 3 * HOUR_MS - 7 * MINUTE_MS  # an earlier hour of the agent's shift
LAST_WEEK = NOW - 7 * DAY_MS  # a day bucket only (older than the minute buckets keep)


def commit(url: str, prefix: str, *batches: CommitBatch) -> None:
    async def run() -> None:
        store = Store(url, prefix, tz=TZ)
        try:
            for b in batches:
                await store.commit(b, NOW)
        finally:
            await store.close()
    asyncio.run(run())


def contents(r: redis.Redis, prefix: str, scope: str) -> dict[str, dict[Any, Any]]:
    """Every hash of `scope` (its kind and bucket as the key), without the prefix and scope."""
    out: dict[str, dict[Any, Any]] = {}
    for key in r.scan_iter(f"{prefix}*:{scope}:*"):
        kind, _, bucket = key.removeprefix(prefix).partition(f":{scope}:")
        if kind != "mx":  # the newest-minute marks (strings)
            out[f"{kind}:{bucket}"] = r.hgetall(key)
    if r.exists(f"{prefix}t:{scope}"):
        out["t"] = r.hgetall(f"{prefix}t:{scope}")
    return out


def test_a_move_takes_the_agents_history_from_the_old_team_to_the_new(redis_url: str) -> None:
    prefix, r = "tmove:", redis.Redis.from_url(redis_url, decode_responses=True)
    counters: dict[tuple[str, int], dict[str, int | float]] = {
        (scope, minute): {"dialed": n, "talk_ms": 1000 * n}
                for minute, n in ((EARLIER, 2), (LAST_WEEK, 5)) for scope in ("agent:a1", "team:t1")}
    counters[("team:t1", EARLIER)] = {"dialed": 7, "talk_ms": 7000}  # the team's other agents
    commit(redis_url, prefix, CommitBatch(counters=counters, notify=False))
    agent, before = contents(r, prefix, "agent:a1"), contents(r, prefix, "team:t1")
    assert {k.split(":")[0] for k in agent} == {"m", "h", "d", "t"} and len(agent) == 6

    commit(redis_url, prefix, CommitBatch(team_moves=[TeamMove("a1", "t1", "t2")], notify=False))
    assert contents(r, prefix, "team:t2") == agent
    old = contents(r, prefix, "team:t1")
    for bucket, fields in before.items():  # what the other agents did stays
        left = {f: int(v) - int(agent.get(bucket, {}).get(f, 0)) for f, v in fields.items()}
        assert {f: int(v) for f, v in old.get(bucket, {}).items()} == left, bucket
    for bucket in agent:
        moved = r.pttl(f"{prefix}{bucket.replace(':', ':team:t2:', 1)}" if bucket != "t" else f"{prefix}t:team:t2")
        kept = r.pttl(f"{prefix}{bucket.replace(':', ':agent:a1:', 1)}" if bucket != "t" else f"{prefix}t:agent:a1")
        assert abs(moved - kept) < 5_000, bucket  # the new team's copy expires with the agent's
    hour = EARLIER - EARLIER % HOUR_MS
    assert r.get(f"{prefix}mx:team:t1:{hour}") == r.get(f"{prefix}mx:team:t2:{hour}") == "59"
    months = {k.removeprefix("d:")[:7] for k in agent if k.startswith("d:")}
    for month in months:
        assert r.sismember(f"{prefix}ix:team:{month}", "t2")


def test_an_agent_with_no_history_moves_nothing(redis_url: str) -> None:
    prefix, r = "tnew:", redis.Redis.from_url(redis_url, decode_responses=True)
    commit(redis_url, prefix, CommitBatch(counters={("team:t1", EARLIER): {"dialed": 3}}, notify=False))
    keys = set(r.keys(f"{prefix}*"))
    commit(redis_url, prefix, CommitBatch(team_moves=[TeamMove("a9", None, "t1"), TeamMove("a8", None, "t2")],
                                          notify=False))
    assert set(r.keys(f"{prefix}*")) == keys  # no bucket, no newest-minute mark of either team
    assert r.zscore(f"{prefix}seen:team", "t2") == NOW  # the new team is seen at the commit's clock

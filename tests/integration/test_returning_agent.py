"""An agent whose stored state expired (72 h after its last write: a long weekend, a vacation, a
part-timer) comes back, against a real Redis (expiry simulated by deleting the state key): its
history is not added to its team a second time, and a resent days-old `agent.state` never
becomes its live state."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis

from stream.kpi.contributions import Thresholds
from stream.processing.pipeline import Pipeline, RawMessage
from stream.store.redis_store import Store

pytestmark = pytest.mark.integration
S, MIN, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000
NOW_S = time.time()
NOW = int(NOW_S * 1000) // MIN * MIN
TOPIC = "dialer.events"


class Feed:
    """Drives a pipeline directly with one partition's records."""

    def __init__(self, url: str, prefix: str) -> None:
        async def dead_letter(key: bytes, value: bytes) -> None:
            return None
        self.pipeline = Pipeline(Store(url, prefix), dead_letter, Thresholds(),
                                 state_horizon_ms=72 * HOUR, clock=lambda: NOW_S, cache_bytes=0)
        self.offset = 0
        self.loop = asyncio.new_event_loop()  # the store's client lives on one loop
        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix

    def send(self, *events: dict) -> None:
        batch = []
        for e in events:
            batch.append(RawMessage(TOPIC, 0, self.offset, json.dumps(e).encode(), NOW))
            self.offset += 1
        self.loop.run_until_complete(self.pipeline.handle(batch))

    def totals(self, scope: str) -> dict[str, float]:
        return {str(k): float(v) for k, v in self.r.hgetall(f"{self.prefix}t:{scope}").items()}

    def expire_agent(self, agent: str) -> None:
        """What the state's 72 h TTL does to an agent away that long."""
        assert self.r.delete(f"{self.prefix}st:agent:{agent}") == 1

    def live(self, agent: str) -> dict | None:
        raw = self.r.hget(f"{self.prefix}live:agents", agent)
        return json.loads(raw) if raw else None


def state(eid: str, t: int, st: str, **f: object) -> dict:
    return {"event_id": eid, "type": "agent.state", "ts": t, "agent_id": "a1", "state": st, **f}


def call(cid: str, t: int, talk_s: int) -> list[dict]:
    return [{"event_id": f"{cid}-c", "type": "call.connected", "ts": t, "call_id": cid,
             "campaign_id": "c1", "agent_id": "a1", "team_id": "north", "wait_ms": 100},
            {"event_id": f"{cid}-e", "type": "call.ended", "ts": t + talk_s * S, "call_id": cid,
             "campaign_id": "c1", "agent_id": "a1", "talk_ms": talk_s * S}]


def first_day(feed: Feed, t0: int) -> None:
    feed.send(state("d1-in", t0, "available", team_id="north", campaign_id="c1"),
              *call("k1", t0 + 5 * MIN, 60))
    feed.send(*call("k2", t0 + 10 * MIN, 90),
              state("d1-out", t0 + 2 * HOUR, "logged_out", team_id="north"))


def test_returning_agent_history_is_not_added_to_its_team_again(redis_url: str) -> None:
    feed = Feed(redis_url, "ret1:")
    t0 = NOW - 4 * DAY
    first_day(feed, t0)
    assert feed.totals("team:north") == feed.totals("agent:a1")
    feed.expire_agent("a1")
    feed.send(state("d4-in", NOW - HOUR, "available", team_id="north", campaign_id="c1"),
              *call("k3", NOW - 50 * MIN, 30))
    agent, team = feed.totals("agent:a1"), feed.totals("team:north")
    assert agent["handled"] == 3
    assert team == agent


def test_returning_agent_moving_team_takes_its_history_once(redis_url: str) -> None:
    feed = Feed(redis_url, "ret2:")
    first_day(feed, NOW - 4 * DAY)
    feed.expire_agent("a1")
    feed.send(state("d4-in", NOW - HOUR, "available", team_id="south", campaign_id="c1"))
    assert feed.totals("team:south") == feed.totals("agent:a1")
    assert not any(feed.totals("team:north").values())


def test_resent_days_old_state_never_becomes_live(redis_url: str) -> None:
    feed = Feed(redis_url, "ret3:")
    t0 = NOW - 4 * DAY
    first_day(feed, t0)
    assert feed.live("a1") is None  # logged out
    staffed = feed.totals("agent:a1")["staffed_ms"]
    feed.expire_agent("a1")
    # The dialer resends the day's login (a new event_id, as a resend after a failover may be).
    feed.send(state("d1-in-again", t0 + 30 * MIN, "available", team_id="north", campaign_id="c1"))
    assert feed.live("a1") is None
    assert feed.totals("agent:a1")["staffed_ms"] == staffed
    assert float(feed.r.hget("ret3:pipeline", "beyond_horizon") or 0) == 1
    # The agent's real return is applied as usual.
    feed.send(state("d4-in", NOW - HOUR, "available", team_id="north", campaign_id="c1"))
    assert (feed.live("a1") or {})["since"] == NOW - HOUR


def test_returning_agent_gap_spans_the_absence_only_within_a_session(redis_url: str) -> None:
    """Gaps follow login sessions across the expiry too: without a logout the absence is one
    (long) gap, as the reference counts it; after a logout there is none."""
    for prefix, logout in (("ret4:", False), ("ret5:", True)):
        feed = Feed(redis_url, prefix)
        t0 = NOW - 4 * DAY
        feed.send(state("d1-in", t0, "available", team_id="north"), *call("k1", t0 + 5 * MIN, 60))
        feed.send(*call("k2", t0 + 10 * MIN, 90))
        if logout:
            feed.send(state("d1-out", t0 + 2 * HOUR, "logged_out"))
        feed.expire_agent("a1")
        feed.send(state("d4-in", NOW - HOUR, "available"), *call("k3", NOW - 50 * MIN, 30))
        k2_end = t0 + 10 * MIN + 90 * S
        gaps = feed.totals("agent:a1")
        expected = (1, 4 * MIN) if logout else (2, 4 * MIN + (NOW - 50 * MIN - k2_end))
        assert (gaps["call_gaps"], gaps["call_gap_ms"]) == expected, prefix


def test_state_in_force_when_the_agent_left_closes_when_it_returns(redis_url: str) -> None:
    """An agent that never logged out stayed in its last state (as the catalog counts it): the
    interval closes at its next point, after the expiry as before it."""
    feed = Feed(redis_url, "ret6:")
    t0 = NOW - 4 * DAY
    feed.send(state("d1-in", t0, "available", team_id="north"),
              state("d1-p", t0 + HOUR, "paused", reason="break"))
    feed.expire_agent("a1")
    feed.send(state("d4-in", NOW - HOUR, "available"))
    totals = feed.totals("agent:a1")
    assert totals["staffed_ms"] == NOW - HOUR - t0
    assert totals["paused_ms"] == NOW - 2 * HOUR - t0
    assert feed.totals("team:north") == totals

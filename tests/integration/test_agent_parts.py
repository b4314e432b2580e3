"""An agent's state in two separately versioned parts, against a real Redis: a worker committing
the agent's `agent.state` events and another committing the calls it handles no longer conflict,
what the calls' gaps read (sessions) still conflicts, and a store written before the two parts
is converted without counting anything twice."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis

from stream.processing.pipeline import RawMessage
from stream.state.agent_state import AgentRecord, AgentState, CallsPart, StatesPart
from stream.store.commit import CommitConflict
from tests.integration.test_pipelining import NOW_S, TOPIC, day, pipeline, stored

pytestmark = pytest.mark.integration
S = 1000
T0 = int(NOW_S * 1000) - 20 * 60 * S


def records(partition: int, events: list[dict], first: int = 0) -> list[RawMessage]:
    return [RawMessage(TOPIC, partition, first + i, json.dumps(e).encode(), int(NOW_S * 1000))
            for i, e in enumerate(events)]


def state(eid: str, t: int, st: str) -> dict:
    return {"event_id": eid, "type": "agent.state", "ts": t, "agent_id": "a1", "state": st,
            "team_id": "t1", "campaign_id": "c1"}


def call(cid: str, t: int, talk_s: int) -> list[dict]:
    base = {"call_id": cid, "campaign_id": "c1"}
    return [{"event_id": f"{cid}-d", "type": "call.dialed", "ts": t - 10 * S, **base},
            {"event_id": f"{cid}-a", "type": "call.answered", "ts": t - S, "answered_by": "human", **base},
            {"event_id": f"{cid}-c", "type": "call.connected", "ts": t, "agent_id": "a1",
             "team_id": "t1", "wait_ms": 1000, **base},
            {"event_id": f"{cid}-e", "type": "call.ended", "ts": t + talk_s * S, "agent_id": "a1",
             "talk_ms": talk_s * S, "hold_ms": 0, **base}]


WARM_UP = records(0, [state("s0", T0, "available")]) + records(1, call("k0", T0 + 10 * S, 20))


def race(url: str, prefix: str, states: list[RawMessage], calls: list[RawMessage],
         calls_first: bool = False) -> None:
    """Two workers prepare on the same store, then commit one after the other: the second
    commit raises CommitConflict if the first changed what it read."""
    a, b = pipeline(url, prefix), pipeline(url, prefix)

    async def run() -> None:
        await a.handle(WARM_UP)
        job_a, job_b = a.check(states), b.check(calls)
        ready_a, ready_b = await a.prepare(job_a), await b.prepare(job_b)
        first, second = ((b, ready_b), (a, ready_a)) if calls_first else ((a, ready_a), (b, ready_b))
        await first[0].commit(first[1])
        await second[0].commit(second[1])
    asyncio.run(run())


def reference(url: str, prefix: str, *batches: list[RawMessage]) -> dict[str, object]:
    p = pipeline(url, prefix)

    async def run() -> None:
        for batch in batches:
            await p.handle(batch)
    asyncio.run(run())
    return stored(url, prefix)


@pytest.mark.parametrize("calls_first", [False, True])
def test_an_agents_states_and_its_calls_commit_side_by_side(redis_url: str, calls_first: bool) -> None:
    """The common case: the agent's own state changes on one worker while another commits the
    call it is on. Both commit at the first attempt, and the result is a single worker's."""
    states = records(0, [state("s1", T0 + 60 * S, "on_call"), state("s2", T0 + 120 * S, "wrap_up"),
                         state("s3", T0 + 150 * S, "available")], first=1)
    calls = records(1, call("k1", T0 + 60 * S, 58), first=4)
    prefix = f"side{int(calls_first)}:"
    race(redis_url, prefix, states, calls, calls_first)  # raises CommitConflict if they collide
    assert stored(redis_url, prefix) == reference(redis_url, f"{prefix}ref:", WARM_UP, states, calls)


def test_a_logout_and_a_call_of_the_same_agent_still_conflict(redis_url: str) -> None:
    """A logout ends the login session, so it changes the gap of the agent's next connect: that
    dependency is kept, and the retry gives a single worker's result."""
    states = records(0, [state("s1", T0 + 40 * S, "logged_out")], first=1)
    calls = records(1, call("k1", T0 + 90 * S, 30), first=4)
    with pytest.raises(CommitConflict):
        race(redis_url, "lo:", states, calls)
    retry = pipeline(redis_url, "lo:")
    asyncio.run(retry.handle(calls))
    assert stored(redis_url, "lo:") == reference(redis_url, "loref:", WARM_UP, states, calls)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert float(r.hget("lo:t:agent:a1", "call_gaps") or 0) == 0  # the logout ended the session


def to_whole_states(url: str, prefix: str) -> int:
    """Rewrite every agent's state and record as stores written before the two parts held them
    (the whole state under the agent key, one record per agent)."""
    r = redis.Redis.from_url(url, decode_responses=True)
    converted = 0
    for key in r.scan_iter(f"{prefix}st:agent:*"):
        agent = key[len(f"{prefix}st:agent:"):]
        calls_key = f"{prefix}st:agent-calls:{agent}"
        version, raw = r.hmget(key, "v", "s")
        assert version is not None and raw is not None, key
        raw_calls = r.hget(calls_key, "s")
        whole = AgentState.join(StatesPart.from_json(json.loads(raw)),
                                CallsPart.from_json(json.loads(raw_calls)) if raw_calls else None)
        assert whole is not None
        r.hset(key, mapping={"v": version, "s": whole.encode()})
        r.delete(calls_key)
        shares = [json.loads(v) if v else None for v in
                  (r.hget(f"{prefix}agents", agent), r.hget(f"{prefix}agent_calls", agent))]
        r.hset(f"{prefix}agents", agent, json.dumps(AgentRecord.from_parts(*shares).to_json()))
        converted += 1
    r.delete(f"{prefix}agent_calls")
    return converted


def test_a_store_written_before_the_two_parts_is_converted_without_double_counting(redis_url: str) -> None:
    messages = day(agents=8, hours=1.0)
    half = len(messages) // 2
    first, second = messages[:half], messages[half:]
    p = pipeline(redis_url, "up:")
    asyncio.run(p.handle(first))
    assert to_whole_states(redis_url, "up:") >= 8
    upgraded = pipeline(redis_url, "up:")  # a new worker (nothing cached) on the old store
    asyncio.run(upgraded.handle(second))
    assert stored(redis_url, "up:") == reference(redis_url, "upref:", first, second)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    agent = next(iter(r.scan_iter("up:st:agent:*")))
    assert "c" not in json.loads(r.hget(agent, "s") or "{}")  # written back in two parts


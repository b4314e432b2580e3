"""A call event that only reads its agent's team (a wrapup, a survey: it writes neither part of
the agent's state) against another worker's team move of that agent, against a real Redis: the
batch prepared on the old team must not commit its `team:` counters there once the move has
committed (the old team would keep them and the new one miss them, for good), and an agent's
state change that leaves its team alone must not make the call event conflict."""

from __future__ import annotations

import asyncio

import pytest
import redis

from stream.processing.pipeline import Pipeline, RawMessage
from tests.integration.test_agent_parts import T0, WARM_UP, S, call, records, reference, state
from tests.integration.test_pipelining import Interleaved, pipeline, stored

pytestmark = pytest.mark.integration


def in_team(event: dict, team: str) -> dict:
    return {**event, "team_id": team}


def wrapup(cid: str, t: int) -> dict:
    return {"event_id": f"{cid}-w", "type": "call.wrapup", "ts": t, "call_id": cid,
            "campaign_id": "c1", "agent_id": "a1", "wrapup_ms": 7 * S, "disposition": "sale"}


MOVES = {
    "by_agent_state": records(0, [in_team(state("s1", T0 + 60 * S, "available"), "t2")], first=1),
    "by_call_connected": records(2, [in_team(e, "t2") for e in call("k2", T0 + 90 * S, 20)]),
}
WRAPUP = records(1, [wrapup("k0", T0 + 40 * S)], first=4)


async def warm_up(other: Pipeline, url: str, prefix: str, before_team_field: bool) -> None:
    """The agent in team t1; `before_team_field`: its states part as commits before the team
    field wrote it (no `t`)."""
    await other.handle(WARM_UP)
    if before_team_field:
        assert redis.Redis.from_url(url).hdel(f"{prefix}st:agent:a1", "t") == 1


def team_totals(url: str, prefix: str) -> dict[str, dict[str, float]]:
    r = redis.Redis.from_url(url, decode_responses=True)
    """Each team's lifetime totals (the non-zero fields)."""
    return {t: {str(f): float(v) for f, v in r.hgetall(f"{prefix}t:team:{t}").items() if float(v)}
            for t in ("t1", "t2")}


def race(url: str, prefix: str, first: list[RawMessage], mine: list[RawMessage], *,
         warm: bool = True, before_team_field: bool = False) -> Interleaved:
    """Another worker commits `first` between the preparation and the commit of `mine` (after
    the warm-up, if `warm`). Returns the store of `mine`'s worker (it counts the conflicts)."""
    other, worker = pipeline(url, prefix), pipeline(url, prefix)

    async def other_first() -> None:
        await other.handle(first)

    store = Interleaved(url, prefix, other_first)
    worker.store = worker.loader.store = store

    async def run() -> None:
        if warm:
            await warm_up(other, url, prefix, before_team_field)
        await worker.handle(mine)
    asyncio.run(run())
    return store


@pytest.mark.parametrize("before_team_field", [False, True])
@pytest.mark.parametrize("mover", sorted(MOVES))
def test_a_call_event_does_not_count_for_the_team_its_agent_left_meanwhile(
        redis_url: str, mover: str, before_team_field: bool) -> None:
    move, prefix = MOVES[mover], f"tm{mover[3]}{int(before_team_field)}:"
    # the wrapup is prepared on t1; the move to t2 commits before it does
    store = race(redis_url, prefix, move, WRAPUP, before_team_field=before_team_field)
    expected = reference(redis_url, f"{prefix}ref:", WARM_UP, move, WRAPUP)
    assert team_totals(redis_url, prefix) == team_totals(redis_url, f"{prefix}ref:")
    assert team_totals(redis_url, prefix)["t1"].get("wrapups", 0) == 0
    assert stored(redis_url, prefix) == expected
    assert store.conflicts == 1  # redone once, on the new team


def test_a_call_event_of_an_agent_first_seen_meanwhile_counts_for_its_team(redis_url: str) -> None:
    """The agent had no state when the call event was prepared: its first `agent.state` (the
    agent's history joins team t2) commits in between."""
    first_state = records(0, [in_team(state("s0", T0, "available"), "t2")])
    wrapup_first = records(1, [wrapup("k0", T0 + 40 * S)])
    store = race(redis_url, "tn:", first_state, wrapup_first, warm=False)
    expected = reference(redis_url, "tnref:", first_state, wrapup_first)
    assert team_totals(redis_url, "tn:") == team_totals(redis_url, "tnref:")
    assert team_totals(redis_url, "tn:")["t2"].get("wrapups") == 1
    assert stored(redis_url, "tn:") == expected
    assert store.conflicts == 1


@pytest.mark.parametrize("before_team_field", [False, True])
def test_an_agent_state_that_keeps_the_team_does_not_conflict_with_its_call_events(
        redis_url: str, before_team_field: bool) -> None:
    """The common case stays free of conflicts: the agent's own state changes (its states part)
    while another worker commits a wrapup that only read its team."""
    same_team = records(0, [state("s1", T0 + 60 * S, "paused")], first=1)
    prefix = f"ts{int(before_team_field)}:"
    store = race(redis_url, prefix, same_team, WRAPUP, before_team_field=before_team_field)
    assert store.conflicts == 0
    assert stored(redis_url, prefix) == reference(redis_url, f"{prefix}ref:", WARM_UP, same_team, WRAPUP)

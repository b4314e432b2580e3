"""Open agent time summed per group (`stream.readers.query.Openings`, shared per live snapshot in
serve) gives exactly what agent-by-agent sums give (`add_open_time`, `OpenTime` without it): the
same values, types and key order, at every clock (open time grows with it), for agents whose
state starts after the window's end or the clock, and for counters that are not integers."""

from __future__ import annotations

import random
from typing import Any

from stream.kpi.scopes import Scope
from stream.kpi.windows import MINUTE_MS, Range
from stream.readers.query import Openings, SharedOpenings, add_open_time, openings_of
from stream.readers.sums import OpenTime

DAY0 = 1_790_000_000_000 // 86_400_000 * 86_400_000
STATES = ("available", "on_call", "wrap_up", "paused", "logged_in")


def _agents(rng: random.Random, n: int, now: int) -> dict[str, dict[str, Any]]:
    out = {}
    for i in range(n):
        state = rng.choice(STATES)
        since = now - rng.randrange(-2 * MINUTE_MS, 30 * 3_600_000)  # some after now (clock skew)
        a: dict[str, Any] = {"state": state, "since": since, "reason": rng.choice([None, "lunch", "break"]),
                             "team": rng.choice([None, "", "t1", "t2", "t3"]),
                             "campaign": rng.choice([None, "c1", "c2"])}
        out[f"a{rng.randrange(10 * n)}-{i}"] = a
    return out


def _items(d: dict[str, Any]) -> list[tuple[str, type, Any]]:
    return [(k, type(v), v) for k, v in d.items()]


SCOPES = [Scope("center"), Scope("team", "t1"), Scope("team", "t2"), Scope("team", "t9"),
          Scope("campaign", "c1"), Scope("campaign", "c2"), Scope("caller_id", "x"), Scope("list", "l")]


def test_group_sums_equal_agent_by_agent_sums() -> None:
    rng = random.Random(7)
    for trial in range(300):
        now = DAY0 + 20 * 3_600_000 + rng.randrange(3_600_000)
        agents = _agents(rng, rng.choice([0, 1, 3, 40]), now)
        openings = Openings(agents)
        ranges = [Range(DAY0, now + MINUTE_MS), Range(now - 15 * MINUTE_MS, now),
                  Range(now - 3_600_000, now - 30 * MINUTE_MS), Range(DAY0 - 86_400_000, DAY0)]
        for clock in (now, now + 1, now + 2 * MINUTE_MS, now + 3_600_000):  # the clock moves on
            fresh = OpenTime(agents, clock)
            shared = OpenTime(agents, clock, openings)
            for r in ranges:
                for scope in [*SCOPES, *(Scope("agent", a) for a in list(agents)[:3])]:
                    assert _items(shared.of(scope, r)) == _items(fresh.of(scope, r)), (trial, scope, r)
                    start: dict[str, float] = rng.choice([{}, {"staffed_ms": 5}, {"staffed_ms": 5.0, "x": 1},
                                                          {"staffed_ms": 0.1, "paused_ms": 3}])
                    want, got = dict(start), dict(start)
                    add_open_time(want, scope, r, clock, agents)
                    openings.add_to(got, scope, r, clock)
                    assert _items(got) == _items(want), (trial, scope, r, start)


def test_a_since_that_is_not_an_integer_is_summed_agent_by_agent() -> None:
    now = DAY0 + 3_600_000
    agents = {"a": {"state": "available", "since": now - 1000.5}, "b": {"state": "paused", "since": now - 7}}
    r = Range(DAY0, now + MINUTE_MS)
    shared = OpenTime(agents, now, Openings(agents))
    assert _items(shared.of(Scope("center"), r)) == _items(OpenTime(agents, now).of(Scope("center"), r))
    want: dict[str, float] = {}
    got: dict[str, float] = {}
    add_open_time(want, Scope("center"), r, now, agents)
    Openings(agents).add_to(got, Scope("center"), r, now)
    assert _items(got) == _items(want)


def test_shared_openings_follow_the_snapshot_and_the_clock() -> None:
    """A new live snapshot (a commit) gets new groups; the same snapshot at a later clock
    gives the open time grown by the clock, not the earlier request's."""
    class FakeStore:
        openings = SharedOpenings()
    store = FakeStore()
    now = DAY0 + 3_600_000
    r = Range(DAY0, now + 10 * MINUTE_MS)
    first = {"a": {"state": "on_call", "since": now - 1000, "team": "t1"}}
    o1 = openings_of(store, first)
    assert o1 is not None and openings_of(store, first) is o1
    assert OpenTime(first, now, o1).of(Scope("team", "t1"), r) == {"staffed_ms": 1000.0, "on_call_ms": 1000.0}
    assert OpenTime(first, now + 500, o1).of(Scope("team", "t1"), r) == {"staffed_ms": 1500.0, "on_call_ms": 1500.0}
    second = {"a": {"state": "paused", "since": now - 10, "team": "t2", "reason": "lunch"}}
    o2 = openings_of(store, second)
    assert o2 is not o1 and o2 is not None
    assert OpenTime(second, now, o2).of(Scope("team", "t1"), r) == {}
    assert OpenTime(second, now, o2).of(Scope("team", "t2"), r) == {
        "staffed_ms": 10.0, "paused_ms": 10.0, "paused_ms:lunch": 10.0}
    assert _items(OpenTime(second, now, o2).of(Scope("team", "t2"), r)) == _items(
        OpenTime(second, now).of(Scope("team", "t2"), r))
    assert openings_of(object(), second) is None  # outside serve: nothing shared
    assert OpenTime({"a": first["a"]}, now, o1)._openings is None  # other agents: not used

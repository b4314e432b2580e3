"""`Query.live_agents` sorts the live list once per live snapshot (a wallboard refresh asks for it
on every page of the grid and for /live): a new snapshot (a login, a logout, a team move) must be
listed as it is, never the list sorted from an older one."""

from __future__ import annotations

import asyncio
from typing import Any
from zoneinfo import ZoneInfo

from stream.kpi.scopes import Scope
from stream.readers.query import Query
from stream.store.redis_store import LiveState


class Snapshots:
    """The store's `live()` as serve shares it: one object per store generation."""

    def __init__(self, agents: dict[str, Any]) -> None:
        self.state = LiveState(agents, {})

    async def live(self) -> LiveState:
        return self.state


def _agent(team: str, since: int = 1_000) -> dict[str, Any]:
    return {"state": "available", "since": since, "team": team, "campaign": "c1"}


def test_a_new_snapshot_is_listed_as_it_is() -> None:
    store = Snapshots({"a2": _agent("t1"), "a1": _agent("t1")})
    query = Query(store, ZoneInfo("UTC"))  # type: ignore[arg-type]

    async def lists() -> tuple[list[str], list[str]]:
        center = [a for a, _ in await query.live_agents(Scope("center"))]
        team = [a for a, _ in await query.live_agents(Scope("team", "t2"))]
        return center, team

    assert asyncio.run(lists()) == (["a1", "a2"], [])
    assert asyncio.run(lists()) == (["a1", "a2"], [])  # the same snapshot: the same list
    # a commit: a3 logs in, a1 moves to team t2 (a new snapshot, as `Store.live` reads it)
    store.state = LiveState({"a1": _agent("t2", 2_000), "a2": _agent("t1"), "a3": _agent("t1")}, {})
    center, team = asyncio.run(lists())
    assert center == ["a1", "a2", "a3"] and team == ["a1"]
    listed = dict(asyncio.run(query.live_agents(Scope("center"))))
    assert listed["a1"]["team"] == "t2" and listed["a1"]["since"] == 2_000

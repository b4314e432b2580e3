"""Answering questions from the store: KPIs of a scope and window, and the live state.

Shared by the HTTP API, the exporter, the wallboard and the CLI, so all of them report the same
numbers from the same definitions (`stream.kpi.catalog`).
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from stream.contract import format_ts
from stream.kpi.catalog import PAUSED_REASON_PREFIX, compute_all
from stream.kpi.scopes import Scope
from stream.kpi.windows import Range
from stream.store.redis_store import Store

STATE_COUNTERS = {"available": "available_ms", "on_call": "on_call_ms",
                  "wrap_up": "wrap_up_ms", "paused": "paused_ms"}


def open_share(live: Mapping[str, Any], r: Range, now_ms: int) -> dict[str, float]:
    """What one logged-in agent's open state adds over `r` up to `now` (empty: nothing)."""
    since = live["since"]  # overlap_ms(since, now_ms, r.start, r.end), inlined: once per agent and range
    ms = (now_ms if now_ms < r.end else r.end) - (since if since > r.start else r.start)
    if ms <= 0:
        return {}
    share: dict[str, float] = {"staffed_ms": ms}
    name = STATE_COUNTERS.get(live["state"])
    if name:
        share[name] = ms
    if live["state"] == "paused":
        share[PAUSED_REASON_PREFIX + (live.get("reason") or "unspecified")] = ms
    return share


def add_open_time(counters: dict[str, float], scope: Scope, r: Range, now_ms: int,
                  live_agents: dict[str, dict[str, Any]]) -> None:
    """Agent time accrues with no events arriving: count each open state up to `now`."""
    for agent_id, live in live_agents.items():
        if not scope.includes_live_agent(agent_id, live):
            continue
        for name, ms in open_share(live, r, now_ms).items():
            counters[name] = counters.get(name, 0) + ms


class Query:
    def __init__(self, store: Store, tz: ZoneInfo) -> None:
        self.store = store
        self.tz = tz
        self._sorted: tuple[dict[str, dict[str, Any]], list[tuple[str, dict[str, Any]]]] | None = None

    async def counters(self, scopes: list[Scope], r: Range, now_ms: int) -> dict[Scope, dict[str, float]]:
        """Window sums per scope, open agent time included."""
        sums = await self.store.window_counters([str(s) for s in scopes], r)
        live_agents, _ = await self.store.live()
        out = {}
        for s in scopes:
            c = dict(sums[str(s)])
            add_open_time(c, s, r, now_ms, live_agents)
            out[s] = c
        return out

    async def kpis(self, scopes: list[Scope], r: Range, now_ms: int) -> dict[Scope, dict[str, Any]]:
        counters = await self.counters(scopes, r, now_ms)
        return {s: compute_all(c) for s, c in counters.items()}

    async def live_agents(self, scope: Scope) -> list[tuple[str, dict[str, Any]]]:
        """The logged-in agents of `scope`, by id: (id, live state). Read only (the center's
        list is shared by every request of the same live snapshot)."""
        agents, _ = await self.store.live()
        if self._sorted is None or self._sorted[0] is not agents:
            self._sorted = (agents, sorted(agents.items()))  # once per snapshot, not per page
        everyone = self._sorted[1]
        if scope.kind == "center":
            return everyone
        return [(agent_id, a) for agent_id, a in everyone if scope.includes_live_agent(agent_id, a)]

    async def live(self, scope: Scope, now_ms: int, call_expiry_ms: int) -> dict[str, Any]:
        _, calls = await self.store.live()
        in_scope = await self.live_agents(scope)
        by_state: Counter[str] = Counter(a["state"] for _, a in in_scope)
        by_reason: Counter[str] = Counter(a.get("reason") or "unspecified" for _, a in in_scope
                                          if a["state"] == "paused")
        listed = live_rows(in_scope, now_ms)
        status: Counter[str] = Counter()
        longest: float | None = None
        for c in calls.values():
            if now_ms - c["since"] > call_expiry_ms or not _call_in_scope(scope, c):
                continue
            status[c["status"]] += 1
            if c["status"] == "waiting":
                wait = max(0.0, (now_ms - c["since"]) / 1000)
                longest = wait if longest is None else max(longest, wait)
        return {
            "scope": str(scope), "now": format_ts(now_ms),
            "agents": {"by_state": dict(by_state), "paused_by_reason": dict(by_reason),
                       "list": listed},
            "calls": {"ringing": status["ringing"], "waiting": status["waiting"],
                      "talking": status["talking"], "longest_wait_seconds": longest},
        }


def live_rows(agents: list[tuple[str, dict[str, Any]]], now_ms: int) -> list[dict[str, Any]]:
    """The rows of `/api/v1/live`'s agent list (and of the agent grid) for these agents."""
    return [{"agent_id": agent_id, "team_id": a.get("team"), "campaign_id": a.get("campaign"),
             "state": a["state"], "reason": a.get("reason"), "since": _since_text(a["since"]),
             "seconds_in_state": max(0.0, (now_ms - a["since"]) / 1000)} for agent_id, a in agents]


_since_text = functools.lru_cache(maxsize=1 << 15)(format_ts)
"""An agent's `since` changes only with its state: 5,000 rows per refresh format few new ones."""


LIVE_CALL_FIELD = {"campaign": "campaign", "agent": "agent", "caller_id": "caller_id",
                   "list": "list", "team": "team"}
"""The `LiveCall` field (stream.state.call_state) a scope kind filters live calls by."""


def _call_in_scope(scope: Scope, call: Mapping[str, Any]) -> bool:
    if scope.kind == "center":
        return True
    return call.get(LIVE_CALL_FIELD[scope.kind]) == scope.ident


def group_by_team(live_agents: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    teams: defaultdict[str, list[str]] = defaultdict(list)
    for agent_id, a in live_agents.items():
        if a.get("team"):
            teams[a["team"]].append(agent_id)
    return dict(teams)

"""Answering questions from the store: KPIs of a scope and window, and the live state.

Shared by the HTTP API, the exporter, the wallboard and the CLI, so all of them report the same
numbers from the same definitions (`stream.kpi.catalog`).
"""

from __future__ import annotations

import bisect
import functools
import itertools
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


def share_names(live: Mapping[str, Any]) -> tuple[str, ...]:
    """The counters one logged-in agent's open state adds to, in `open_share`'s order (its
    share of a millisecond: one definition)."""
    return tuple(open_share({**live, "since": 0}, Range(0, 1), 1))


EXACT = 2 ** 53
"""Integers below this are exact doubles: sums of open-time milliseconds below it are the same
in any order, so a group's open time can be summed at once instead of agent by agent."""
GROUP_KINDS = ("center", "team", "campaign")
"""The scope kinds several agents' open time counts in (`Scope.includes_live_agent`)."""


class _Group:
    """The logged-in agents counting in one center, team or campaign: per set of counters
    their states add to (`share_names`, in first-seen order), their states' starts, sorted,
    with prefix sums. Over a range from `start` up to an end E after every start, the group
    adds, per counter, `count × E − Σ max(since, start)`, found by bisection."""

    __slots__ = ("kinds", "last", "_sealed", "_at")

    def __init__(self) -> None:
        self.kinds: dict[tuple[str, ...], list[int]] = {}  # names -> the agents' `since`s
        self.last = 0
        self._sealed: list[tuple[tuple[str, ...], list[int], list[int]]] = []
        self._at: dict[int, list[tuple[tuple[str, ...], int, int]]] = {}

    def seal(self) -> None:
        """Sort the starts once all members are in (the latest start bounds the fast path)."""
        for names, sinces in self.kinds.items():
            sinces.sort()
            self._sealed.append((names, sinces, [0, *itertools.accumulate(sinces)]))
        self.last = max(v[1][-1] for v in self._sealed)

    def totals(self, start: int, end: int) -> dict[str, int] | None:
        """name -> the members' open time over [start, end) (an int), or None when a member's
        state starts at or after `end` (it adds nothing, changing the sums' counts and key
        order) or a sum would leave the exact integers: then the caller sums agent by agent."""
        if end <= self.last or end <= start:
            return None
        parts = self._at.get(start)
        if parts is None:
            parts = self._at[start] = []
            for names, sinces, prefix in self._sealed:
                j = bisect.bisect_right(sinces, start)  # these count from `start`, the rest from `since`
                parts.append((names, len(sinces), start * j + prefix[-1] - prefix[j]))
        out: dict[str, int] = {}
        for names, k, s in parts:
            ms = k * end - s
            for name in names:
                out[name] = out.get(name, 0) + ms
        return out if out["staffed_ms"] < EXACT else None


class Openings:
    """Open agent time of one live snapshot (`Store.live()`'s agents, which nobody changes),
    grouped per center, team and campaign once, then summed for any range and `now` per group
    (`_Group.totals`) instead of agent by agent: every request of a refresh (/kpis, the
    campaigns, targets, cost) adds open time over the same 5,000 agents, each at its own clock.
    The same numbers as `add_open_time` and `OpenTime` (integer milliseconds below 2^53 sum
    exactly in any order; anything else falls back to the agent-by-agent sums)."""

    def __init__(self, live_agents: Mapping[str, Mapping[str, Any]]) -> None:
        self.agents = live_agents
        self._groups: dict[tuple[str, str], _Group] | None = None
        self._built = False

    def groups(self) -> dict[tuple[str, str], _Group] | None:
        """(kind, ident) -> its agents' group; None: an agent's `since` is not an integer (only
        integers sum exactly in any order)."""
        if self._built:
            return self._groups
        self._built = True
        out: dict[tuple[str, str], _Group] = {}
        names_of: dict[tuple[Any, Any], tuple[str, ...]] = {}
        center = out[("center", "")] = _Group()
        for a in self.agents.values():
            since = a["since"]
            if type(since) is not int:
                return None
            sig = (a["state"], a.get("reason"))
            names = names_of.get(sig)
            if names is None:
                names = names_of[sig] = share_names(a)
            center.kinds.setdefault(names, []).append(since)
            for kind in ("team", "campaign"):
                ident = a.get(kind)
                if ident:
                    g = out.get((kind, ident))
                    if g is None:
                        g = out[(kind, ident)] = _Group()
                    g.kinds.setdefault(names, []).append(since)
        if not center.kinds:
            del out[("center", "")]
        for g in out.values():
            g.seal()
        self._groups = out
        return out

    def sums(self, kind: str, r: Range, now_ms: int) -> dict[tuple[str, str], dict[str, float]] | None:
        """`OpenTime`'s sums of one group kind over `r` at `now_ms` (None: not computable here
        for every group of the kind; `OpenTime` then sums agent by agent)."""
        groups = self.groups()
        if groups is None:
            return None
        end = now_ms if now_ms < r.end else r.end
        out: dict[tuple[str, str], dict[str, float]] = {}
        for key, g in groups.items():
            if key[0] != kind:
                continue
            totals = g.totals(r.start, end)
            if totals is None:
                return None
            out[key] = {name: float(ms) for name, ms in totals.items()}
        return out

    def add_to(self, counters: dict[str, float], scope: Scope, r: Range, now_ms: int) -> None:
        """`add_open_time(counters, scope, r, now_ms, self.agents)`, the same values."""
        if scope.kind == "agent":
            a = self.agents.get(scope.ident)
            if a is not None:
                for name, ms in open_share(a, r, now_ms).items():
                    counters[name] = counters.get(name, 0) + ms
            return
        if scope.kind not in GROUP_KINDS:  # caller IDs, lists, variants: no agent time
            return
        groups = self.groups()
        g = groups.get((scope.kind, scope.ident)) if groups is not None else None
        totals = g.totals(r.start, now_ms if now_ms < r.end else r.end) if g is not None else None
        if totals is not None and all(_exact(counters.get(n, 0), ms) for n, ms in totals.items()):
            for name, ms in totals.items():
                counters[name] = counters.get(name, 0) + ms
        elif groups is None or g is not None:  # no group: no agent counts here
            add_open_time(counters, scope, r, now_ms, self.agents)  # type: ignore[arg-type]


def _exact(value: float, add: int) -> bool:
    """`value + add` agent by agent (each add positive) is `value + add` at once: integers all."""
    return (type(value) is int or (type(value) is float and value.is_integer())) and abs(value) + add < EXACT


class SharedOpenings:
    """serve's `Openings` of the current live snapshot (`cache.SharedSnapshot` shares one
    snapshot object per store generation, read only): a new snapshot gets new ones."""

    def __init__(self) -> None:
        self._last: Openings | None = None

    def of(self, live_agents: Mapping[str, Mapping[str, Any]]) -> Openings:
        last = self._last
        if last is None or last.agents is not live_agents:
            last = self._last = Openings(live_agents)
        return last


def openings_of(store: Any, live_agents: Mapping[str, Mapping[str, Any]]) -> Openings | None:
    """The snapshot's shared `Openings` in serve (`store.openings`); None elsewhere."""
    shared: SharedOpenings | None = getattr(store, "openings", None)
    return shared.of(live_agents) if shared is not None else None


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
        self.rows_kept: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        """`live_rows`' kept rows (valid while an agent's live state is the same object)."""

    async def counters(self, scopes: list[Scope], r: Range, now_ms: int) -> dict[Scope, dict[str, float]]:
        """Window sums per scope, open agent time included."""
        sums = await self.store.window_counters([str(s) for s in scopes], r)
        live_agents, _ = await self.store.live()
        openings = openings_of(self.store, live_agents)
        out = {}
        for s in scopes:
            c = dict(sums[str(s)])
            if openings is not None:
                openings.add_to(c, s, r, now_ms)
            else:
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
        listed = live_rows(in_scope, now_ms, self.rows_kept)
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


def live_rows(agents: list[tuple[str, dict[str, Any]]], now_ms: int,
              kept: dict[str, tuple[dict[str, Any], dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """The rows of `/api/v1/live`'s agent list (and of the agent grid) for these agents.

    `kept` (`Query.rows_kept`): each agent's row but its time in state, kept with the very live
    state object it was made from (a snapshot nobody changes): rows of the same snapshot only
    add the time in state, the one part that moves with the clock (10,000 rows a refresh)."""
    if kept is not None and len(kept) > MAX_KEPT_ROWS:
        kept.clear()
    out = []
    for agent_id, a in agents:
        if kept is None:
            row = _row_but_time(agent_id, a)
        else:
            found = kept.get(agent_id)
            if found is None or found[0] is not a:
                found = kept[agent_id] = (a, _row_but_time(agent_id, a))
            row = found[1].copy()
        row["seconds_in_state"] = max(0.0, (now_ms - a["since"]) / 1000)
        out.append(row)
    return out


def _row_but_time(agent_id: str, a: dict[str, Any]) -> dict[str, Any]:
    return {"agent_id": agent_id, "team_id": a.get("team"), "campaign_id": a.get("campaign"),
            "state": a["state"], "reason": a.get("reason"), "since": _since_text(a["since"])}


MAX_KEPT_ROWS = 100_000


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

"""Per-agent state: the `agent.state` timeline, the agent's team, and its calls for call gaps.

Agent time and call gaps are functions of the whole timeline, so a late point or a late
`call.ended` changes intervals and gaps that were already counted. Each update computes the
closed intervals (or gaps) before and after, and the worker writes only the difference.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from stream.contract import Event
from stream.kpi.windows import minute_of, split_by_minute
from stream.state.deltas import Deltas

Point = tuple[int, str, str, str | None, str | None]
"""(ts_ms, event_id, state, pause reason, campaign) of one `agent.state` event."""
Interval = tuple[int, int, str, str | None, str | None]
"""(start, end, state, reason, campaign): a closed interval in one state."""

PRUNE_STEP_MS = 10 * 60_000
"""An agent's state is pruned when its horizon has moved on by this much (so at most this much
more history is kept than the horizon asks for)."""
UNSPECIFIED_REASON = "unspecified"
"""The pause reason reported for a `paused` state that named none."""
STATE_COUNTERS = {"available": "available_ms", "on_call": "on_call_ms",
                  "wrap_up": "wrap_up_ms", "paused": "paused_ms"}


@dataclass
class AgentCall:
    """What one call contributes to the agent's call gaps."""

    connects: list[tuple[int, str]] = field(default_factory=list)  # (ts, campaign)
    ends: list[int] = field(default_factory=list)
    caller_id: str | None = None
    list_id: str | None = None


class AgentRecord(NamedTuple):
    """What must outlive the agent's state (which expires with the state horizon, 72 h after
    its last write): written with every state, read when the state is gone."""

    team: str | None
    team_key: tuple[int, str] | None
    newest_ms: int | None
    """The newest event time the agent's state had seen: nothing older is placed any more."""
    has_states: bool
    """The agent ever had an `agent.state` event (its call gaps are bounded by login sessions,
    not by `max_call_gap_seconds`)."""

    def to_json(self) -> dict[str, Any]:
        return {"t": self.team, "tk": self.team_key, "n": self.newest_ms, "s": self.has_states}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "AgentRecord":
        return cls(d.get("t"), tuple(d["tk"]) if d.get("tk") else None,  # type: ignore[arg-type]
                   d.get("n"), bool(d.get("s")))


@dataclass
class AgentState:
    points: list[Point] = field(default_factory=list)
    team: str | None = None
    team_key: tuple[int, str] | None = None
    calls: dict[str, AgentCall] = field(default_factory=dict)
    floor: int | None = None
    """Points before this were pruned: an older point cannot be placed exactly any more."""
    pruned_to: int | None = None
    """The horizon of the last pruning."""
    has_states: bool = False
    """The agent has had an `agent.state` event (see `AgentRecord.has_states`)."""

    @classmethod
    def returning(cls, record: AgentRecord) -> "AgentState":
        """The state of an agent whose stored state expired: its team stays (a team move takes
        its history from that team, not from nowhere), and nothing older than its newest event
        is placed (a resent days-old `agent.state` must not become its live state)."""
        return cls(team=record.team, team_key=record.team_key, floor=record.newest_ms,
                   pruned_to=record.newest_ms, has_states=record.has_states)

    def record(self) -> AgentRecord:
        newest = self.newest_ms()
        if self.floor is not None:
            newest = max(newest, self.floor) if newest is not None else self.floor
        return AgentRecord(self.team, self.team_key, newest, self.has_states)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "AgentState":
        return cls(
            points=[tuple(p) for p in d.get("p", [])],  # type: ignore[misc]
            team=d.get("t"),
            team_key=tuple(d["tk"]) if d.get("tk") else None,  # type: ignore[arg-type]
            calls={cid: AgentCall([tuple(x) for x in c[0]], c[1], c[2], c[3])  # type: ignore[misc]
                   for cid, c in d.get("c", {}).items()},
            floor=d.get("f"),
            pruned_to=d.get("ph"),
            has_states=bool(d.get("hs")),
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (tuples encode as arrays: no copies, this runs for every agent a batch
        touches)."""
        return {
            "p": self.points, "t": self.team, "tk": self.team_key,
            "c": {cid: (c.connects, c.ends, c.caller_id, c.list_id) for cid, c in self.calls.items()},
            "f": self.floor, "ph": self.pruned_to, "hs": self.has_states,
        }

    def clone(self) -> "AgentState":
        """An independent copy to process: points are tuples and an `AgentCall` is replaced,
        never changed, so copying the containers is enough."""
        return AgentState(list(self.points), self.team, self.team_key, dict(self.calls),
                          self.floor, self.pruned_to, self.has_states)

    # -- team ---------------------------------------------------------------------------------

    def observe_team(self, team: str, ts_ms: int, event_id: str) -> None:
        """The team is that of the latest (ts, event_id) observation, in any arrival order."""
        key = (ts_ms, event_id)
        if self.team_key is None or key > self.team_key:
            self.team, self.team_key = team, key

    # -- agent time ---------------------------------------------------------------------------

    def intervals(self, start: int = 0) -> set[Interval]:
        """The closed intervals from point `start` on."""
        pts = self.points[start:]
        return {(a[0], b[0], a[2], a[3], a[4]) for a, b in zip(pts, pts[1:])}

    def add_points(self, agent_id: str, events: list[Event], deltas: Deltas) -> tuple[int, int]:
        """Insert `agent.state` points; write the change in closed intervals. Returns how many
        points were new and how many fell before the state horizon (not placeable).

        Only intervals from the point before the earliest new one can change, so only those
        are compared (usually the last one or two: points mostly arrive in order)."""
        known = {p[1] for p in self.points}
        new = [e for e in events if e.event_id not in known]
        if not new:
            return 0, 0
        first = min((e.ts_ms, e.event_id) for e in new)
        start = max(0, bisect_left(self.points, first, key=_point_key) - 1)
        before = self.intervals(start)
        added = beyond = 0
        seen: set[str] = set()
        for e in new:
            if e.event_id in seen:
                continue
            seen.add(e.event_id)
            if self.floor is not None and e.ts_ms < self.floor:
                beyond += 1
                continue
            f = e.fields
            self.points.append((e.ts_ms, e.event_id, f["state"], f.get("reason"),
                                e.campaign_id or f.get("campaign_id")))
            added += 1
        if not added:
            return 0, beyond
        self.points.sort(key=_point_key)
        after = self.intervals(start)
        for iv in after - before:
            interval_deltas(agent_id, iv, deltas, 1)
        for iv in before - after:
            interval_deltas(agent_id, iv, deltas, -1)
        return added, beyond

    def current(self) -> Point | None:
        return self.points[-1] if self.points else None

    # -- call gaps ----------------------------------------------------------------------------

    def gaps(self, agent_id: str, since: int = -1) -> Deltas:
        """Every gap (end of a call → this agent's next connect) of connects at or after `since`,
        counted at the connect. A changed end at t only moves gaps of connects at or after t."""
        out = Deltas()
        ends = sorted((t, cid) for cid, c in self.calls.items() for t in c.ends)
        end_times = [t for t, _ in ends]
        for cid, call in self.calls.items():
            for connect_ts, campaign in call.connects:
                if connect_ts < since:
                    continue
                i = bisect_right(end_times, connect_ts) - 1
                while i >= 0 and ends[i][1] == cid:
                    i -= 1
                if i < 0:
                    continue
                prev = end_times[i]
                scopes = ["center", f"campaign:{campaign}", f"agent:{agent_id}"]
                if call.caller_id:
                    scopes.append(f"caller_id:{call.caller_id}")
                if call.list_id:
                    scopes.append(f"list:{call.list_id}")
                out.add(scopes, minute_of(connect_ts),
                        {"call_gap_ms": connect_ts - prev, "call_gaps": 1})
        return out

    def newest_ms(self) -> int | None:
        """The latest event time this agent's state has seen (its own event-time watermark)."""
        times = [p[0] for p in self.points[-1:]]
        times += [t for c in self.calls.values() for t in (*c.ends, *(ts for ts, _ in c.connects))]
        return max(times) if times else None

    def prune(self, span_ms: int, watermark_ms: int | None = None) -> None:
        """Forget what lies wholly more than `span_ms` before the agent's newest event (keeping
        the point that opens the interval in force at the horizon). The horizon follows event
        time, not the wall clock, so a backfill of an old day is exact; `watermark_ms` (the
        slowest partition's progress) holds it back while partitions are consumed unevenly."""
        if self.points and self.pruned_to is not None:
            # Pruning scans every call; skip it until the horizon (judged by the points, a
            # lower bound) has moved on by PRUNE_STEP_MS. It only bounds the state's size.
            low = min(self.points[-1][0], watermark_ms if watermark_ms is not None
                      else self.points[-1][0]) - span_ms
            if low - self.pruned_to < PRUNE_STEP_MS:
                return
        newest = self.newest_ms()
        if newest is None:
            return
        horizon_ms = min(newest, watermark_ms if watermark_ms is not None else newest) - span_ms
        self.pruned_to = horizon_ms
        keep_from = bisect_left(self.points, horizon_ms, key=_point_ts) - 1
        if keep_from > 0:
            self.points = self.points[keep_from:]
            self.floor = self.points[0][0]
        self.calls = {cid: c for cid, c in self.calls.items()
                      if any(t >= horizon_ms for t in c.ends)
                      or any(t >= horizon_ms for t, _ in c.connects)
                      or (not c.ends and not c.connects)}


def _point_ts(p: Point) -> int:
    return p[0]


def _point_key(p: Point) -> tuple[int, str]:
    return p[0], p[1]


def interval_deltas(agent_id: str, iv: Interval, deltas: Deltas, sign: int) -> None:
    """Agent time of one interval, split into minute buckets, for agent, campaign and center."""
    start, end, state, reason, campaign = iv
    if state == "logged_out" or end <= start:
        return
    names = ["staffed_ms"]
    if state in STATE_COUNTERS:
        names.append(STATE_COUNTERS[state])
    if state == "paused":
        names.append(f"paused_ms:{reason or UNSPECIFIED_REASON}")
    scopes = ["center", f"agent:{agent_id}"]
    if campaign:
        scopes.append(f"campaign:{campaign}")
    for minute, ms in split_by_minute(start, end):
        deltas.add(scopes, minute, {n: ms for n in names}, sign)

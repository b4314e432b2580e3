"""Per-agent state: the `agent.state` timeline, the agent's team, and its calls for call gaps.

Agent time and call gaps are functions of the whole timeline, so a late point or a late
`call.ended` changes intervals and gaps that were already counted. Each update computes the
closed intervals (or gaps) before and after, and the worker writes only the difference.

A call gap (docs/kpis.md) runs from the agent's latest call end (of another call) to its
`call.connected`, within one login session: a `logged_out` at or between the two ends it. An
agent with no `agent.state` at all has no known sessions, so a gap longer than
`max_call_gap_ms` is not counted. Pruning keeps what the gaps of connects after the horizon need
(the latest call ends before it, unless a logout follows them), so gaps do not depend on batch
boundaries, pruning or arrival order.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter
from dataclasses import dataclass, field
from enum import Flag
from itertools import pairwise
from typing import Any, NamedTuple

from stream.contract import Event
from stream.kpi.windows import minute_of, split_by_minute
from stream.state.deltas import Deltas
from stream.state.encoding import EncodedPrefix, dumps, encode_list


class Point(NamedTuple):
    """One `agent.state` event on the agent's timeline (stored as a JSON array)."""

    ts_ms: int
    event_id: str
    state: str
    reason: str | None
    campaign: str | None


class Interval(NamedTuple):
    """A closed interval in one state: from one point to the next."""

    start: int
    end: int
    state: str
    reason: str | None
    campaign: str | None


class Connect(NamedTuple):
    """A `call.connected` of the agent: where its call gap is counted."""

    ts_ms: int
    campaign: str


class TeamKey(NamedTuple):
    """Orders team observations: the latest (ts, event_id) names the agent's team."""

    ts_ms: int
    event_id: str


class TeamSeen(NamedTuple):
    """The latest team observation of one part of the agent's state."""

    team: str
    key: TeamKey


class Parts(Flag):
    """The two separately versioned parts of an agent's stored state (docs/scaling.md#agent-state-in-two-parts).

    Calls are keyed by call, so every worker writes the calls part of every active agent; an
    agent's own `agent.state` events write the states part. A batch writes (and the commit
    checks the version of) only the parts it changed, or both when what it changed is read by
    the other part's updates (sessions, the team, the pruning horizon)."""

    NONE = 0
    STATES = 1
    """points, floor, `has_states`, the team seen in `agent.state` events"""
    CALLS = 2
    """the agent's calls (connects and ends, for call gaps), the team seen in `call.connected`"""
    BOTH = 3
    """STATES | CALLS (a literal: mypyc, for the native build, cannot evaluate the expression)"""


class PointsApplied(NamedTuple):
    added: int
    """New points placed on the timeline."""
    beyond: int
    """Points older than the kept history (`beyond_horizon`): not applied."""


class GapInputs(NamedTuple):
    """Everything an agent's call gaps depend on (a snapshot before a batch changes it)."""

    calls: dict[str, AgentCall]
    points: list[Point]
    has_states: bool
    floor: int | None
    """Gaps of connects before this are no longer derived (the gap horizon)."""

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

    connects: list[Connect] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    caller_id: str | None = None
    list_id: str | None = None
    encoded: tuple[str, str] | None = field(default=None, repr=False, compare=False)
    """(call id, `"<call id>":[...]`): this call's part of the agent's JSON, once encoded (an
    `AgentCall` is replaced when its call changes, never changed)."""

    def encode(self, call_id: str) -> str:
        if self.encoded is None or self.encoded[0] != call_id:
            self.encoded = (call_id, dumps(call_id) + ":" + dumps(
                (self.connects, self.ends, self.caller_id, self.list_id)))
        return self.encoded[1]


CARRIED_CALL = ""
"""The call id under which a returning agent's latest call end is kept (no real call has it:
the contract's ids are non-empty)."""


class AgentRecord(NamedTuple):
    """What must outlive the agent's state (which expires with the state horizon, 72 h after
    its last write): written with every state, read when the state is gone."""

    team: str | None
    team_key: TeamKey | None
    newest_ms: int | None
    """The newest event time the agent's state had seen: nothing older is placed any more."""
    has_states: bool
    """The agent ever had an `agent.state` event (its call gaps are bounded by login sessions,
    not by `max_call_gap_seconds`)."""
    open_end_ms: int | None = None
    """The agent's latest call end, unless a logout followed it: where the gap of its next
    connect starts, however long it is away."""
    last_point: Point | None = None
    """The agent's state in force (its latest point): its interval closes at the next point."""

    def to_json(self) -> dict[str, Any]:
        return {"t": self.team, "tk": self.team_key, "n": self.newest_ms, "s": self.has_states,
                "e": self.open_end_ms, "p": self.last_point}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AgentRecord:
        return cls(d.get("t"), TeamKey(*d["tk"]) if d.get("tk") else None, d.get("n"),
                   bool(d.get("s")), d.get("e"), Point(*d["p"]) if d.get("p") else None)

    @classmethod
    def from_parts(cls, states: dict[str, Any] | None, calls: dict[str, Any] | None) -> AgentRecord:
        """The record from the states part's share and the calls part's (either may be absent;
        a record written before the two parts is a whole one, with its own `e`)."""
        st, ca = states or {}, calls or {}
        seen = [(TeamKey(*d["tk"]), d["t"]) for d in (st, ca) if d.get("tk")]
        key, team = max(seen) if seen else (None, None)
        newest = max((d["n"] for d in (st, ca) if d.get("n") is not None), default=None)
        if calls is None:
            open_end = st.get("e")
        else:
            end, logout = ca.get("e"), st.get("l")
            open_end = end if end is not None and (logout is None or logout < end) else None
        return cls(team, key, newest, bool(st.get("s")), open_end,
                   Point(*st["p"]) if st.get("p") else None)


@dataclass
class AgentState:
    points: list[Point] = field(default_factory=list)
    team: str | None = None
    team_key: TeamKey | None = None
    calls: dict[str, AgentCall] = field(default_factory=dict)
    floor: int | None = None
    """Points before this were pruned: an older point cannot be placed exactly any more."""
    pruned_to: int | None = None
    """The horizon of the last pruning."""
    has_states: bool = False
    """The agent has had an `agent.state` event (see `AgentRecord.has_states`)."""
    encoded_points: EncodedPrefix | None = field(default=None, repr=False, compare=False)
    states_team: TeamSeen | None = None
    """The team observation kept with the states part (`team` is the latest of both parts)."""
    calls_team: TeamSeen | None = None
    """The team observation kept with the calls part."""

    @classmethod
    def returning(cls, record: AgentRecord) -> AgentState:
        """The state of an agent whose stored state expired: its team stays (a team move takes
        its history from that team, not from nowhere), and nothing older than its newest event
        is placed (a resent days-old `agent.state` must not become its live state)."""
        calls = ({CARRIED_CALL: AgentCall(ends=[record.open_end_ms])}
                 if record.open_end_ms is not None else {})
        return cls(points=[record.last_point] if record.last_point else [], team=record.team,
                   team_key=record.team_key, calls=calls, floor=record.newest_ms,
                   pruned_to=record.newest_ms, has_states=record.has_states,
                   states_team=_seen(record.team, record.team_key))

    def record(self) -> AgentRecord:
        newest = self.newest_ms()
        if self.floor is not None:
            newest = max(newest, self.floor) if newest is not None else self.floor
        open_end = max((c.ends[-1] for c in self.calls.values() if c.ends), default=None)
        if open_end is not None and self._logout_since(open_end):
            open_end = None
        return AgentRecord(self.team, self.team_key, newest, self.has_states, open_end,
                           self.current())

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AgentState:
        """The whole state in one JSON (as stores written before the two parts kept it)."""
        team, team_key = d.get("t"), TeamKey(*d["tk"]) if d.get("tk") else None
        return cls(
            points=[Point(*p) for p in d.get("p", [])],
            team=team,
            team_key=team_key,
            calls=_calls_of(d.get("c", {})),
            floor=d.get("f"),
            pruned_to=d.get("ph"),
            has_states=bool(d.get("hs")),
            states_team=_seen(team, team_key),
        )

    @classmethod
    def join(cls, states: StatesPart | None, calls: CallsPart | None) -> AgentState | None:
        """The agent's state from its two stored parts (None: neither is stored)."""
        if states is None and calls is None:
            return None
        st = states or StatesPart()
        ca = calls or CallsPart()
        seen = [t for t in (st.team, ca.team) if t is not None]
        latest = max(seen, key=lambda t: t.key) if seen else None
        horizons = [h for h in (st.pruned_to, ca.pruned_to) if h is not None]
        return cls(st.points, latest.team if latest else None, latest.key if latest else None,
                   ca.calls, st.floor, max(horizons) if horizons else None, st.has_states,
                   st.encoded_points, st.team, ca.team)

    def split(self) -> tuple[StatesPart, CallsPart]:
        """The two parts to store (they share the state's containers: encode, then drop)."""
        return (StatesPart(self.points, self.states_team, self.floor, self.pruned_to,
                           self.has_states, self.encoded_points),
                CallsPart(self.calls, self.calls_team, self.pruned_to))

    def states_record(self) -> dict[str, Any]:
        """The states part's share of the agent's record (`AgentRecord.from_parts`)."""
        newest = max((t for t in (self.points[-1].ts_ms if self.points else None, self.floor)
                      if t is not None), default=None)
        logout = next((p.ts_ms for p in reversed(self.points) if p.state == "logged_out"), None)
        seen = self.states_team
        return {"t": seen.team if seen else None, "tk": seen.key if seen else None, "n": newest,
                "s": self.has_states, "p": self.current(), "l": logout}

    def calls_record(self) -> dict[str, Any]:
        """The calls part's share of the agent's record: its latest call end and newest time."""
        ends = [c.ends[-1] for c in self.calls.values() if c.ends]
        times = ends + [c.connects[-1].ts_ms for c in self.calls.values() if c.connects]
        seen = self.calls_team
        return {"t": seen.team if seen else None, "tk": seen.key if seen else None,
                "n": max(times, default=None), "e": max(ends, default=None)}

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (tuples encode as arrays: no copies, this runs for every agent a batch
        touches)."""
        return {
            "p": self.points, "t": self.team, "tk": self.team_key,
            "c": {cid: (c.connects, c.ends, c.caller_id, c.list_id) for cid, c in self.calls.items()},
            "f": self.floor, "ph": self.pruned_to, "hs": self.has_states,
        }

    def encode(self) -> str:
        """`dumps(self.to_json())`, encoding only the points and calls not encoded before."""
        points, self.encoded_points = encode_list(self.points, self.encoded_points)
        calls = ",".join(c.encode(cid) for cid, c in self.calls.items())
        return (f'{{"p":{points},"t":{dumps(self.team)},"tk":{dumps(self.team_key)},'
                f'"c":{{{calls}}},"f":{dumps(self.floor)},"ph":{dumps(self.pruned_to)},'
                f'"hs":{dumps(self.has_states)}}}')

    def clone(self) -> AgentState:
        """An independent copy to process: points are tuples and an `AgentCall` is replaced,
        never changed, so copying the containers is enough."""
        return AgentState(list(self.points), self.team, self.team_key, dict(self.calls),
                          self.floor, self.pruned_to, self.has_states, self.encoded_points,
                          self.states_team, self.calls_team)

    # -- team ---------------------------------------------------------------------------------

    def observe_team(self, team: str, ts_ms: int, event_id: str, by_call: bool = False) -> Parts:
        """The team is that of the latest (ts, event_id) observation, in any arrival order.
        Returns the parts changed: the observing part's, or both if the team itself changed."""
        key = TeamKey(ts_ms, event_id)
        changed = Parts.NONE
        part = self.calls_team if by_call else self.states_team
        if part is None or key > part.key:
            changed = Parts.CALLS if by_call else Parts.STATES
            if by_call:
                self.calls_team = TeamSeen(team, key)
            else:
                self.states_team = TeamSeen(team, key)
        if self.team_key is None or key > self.team_key:
            if team != self.team:
                changed = Parts.BOTH
            self.team, self.team_key = team, key
        return changed

    # -- agent time ---------------------------------------------------------------------------

    def intervals(self, start: int = 0) -> set[Interval]:
        """The closed intervals from point `start` on."""
        return {Interval(a.ts_ms, b.ts_ms, a.state, a.reason, a.campaign)
                for a, b in pairwise(self.points[start:])}

    def add_points(self, agent_id: str, events: list[Event], deltas: Deltas) -> PointsApplied:
        """Insert `agent.state` points; write the change in closed intervals. Returns how many
        points were new and how many fell before the state horizon (not placeable).

        Only intervals from the point before the earliest new one can change, so only those
        are compared (usually the last one or two: points mostly arrive in order)."""
        known = {p.event_id for p in self.points}
        new = [e for e in events if e.event_id not in known]
        if not new:
            return PointsApplied(0, 0)
        first = min((e.ts_ms, e.event_id) for e in new)
        start = max(0, bisect_left(self.points, first, key=_point_key) - 1)
        before = self.intervals(start)
        beyond = 0
        placed: list[Point] = []
        seen: set[str] = set()
        for e in new:
            if e.event_id in seen:
                continue
            seen.add(e.event_id)
            if self.floor is not None and e.ts_ms < self.floor:
                beyond += 1
                continue
            f = e.fields
            placed.append(Point(e.ts_ms, e.event_id, f["state"], f.get("reason"),
                                e.campaign_id or f.get("campaign_id")))
        added = len(placed)
        if not added:
            return PointsApplied(0, beyond)
        if added <= 8:  # keys are unique, so inserting each in place is sorting
            for p in placed:
                insort(self.points, p, key=_point_key)
        else:
            self.points.extend(placed)
            self.points.sort(key=_point_key)
        after = self.intervals(start)
        # in start order (unique within one timeline): a set of tuples holding None iterates in
        # an order that changes from process to process (hash(None) is its address before 3.12),
        # and the commit's bytes should not (tests/integration/test_native_build.py)
        for iv in sorted(after - before, key=_interval_start):
            interval_deltas(agent_id, iv, deltas, 1)
        for iv in sorted(before - after, key=_interval_start):
            interval_deltas(agent_id, iv, deltas, -1)
        return PointsApplied(added, beyond)

    def current(self) -> Point | None:
        return self.points[-1] if self.points else None

    # -- call gaps ----------------------------------------------------------------------------

    def logouts(self) -> list[int]:
        return logouts_of(self.points)

    def _logout_since(self, t: int) -> bool:
        """A logout at or after `t` (points are in time order: only the tail is read)."""
        for p in reversed(self.points):
            if p.ts_ms < t:
                return False
            if p.state == "logged_out":
                return True
        return False

    def gap_inputs(self) -> GapInputs:
        """A snapshot of what the gaps depend on (calls and points are replaced, never
        changed, so copying the containers is enough)."""
        return GapInputs(dict(self.calls), list(self.points), self.has_states, self.pruned_to)

    def newest_ms(self) -> int | None:
        """The latest event time this agent's state has seen (its own event-time watermark)."""
        times = [p.ts_ms for p in self.points[-1:]]  # ends and connects are in time order
        times += [c.ends[-1] for c in self.calls.values() if c.ends]
        times += [c.connects[-1].ts_ms for c in self.calls.values() if c.connects]
        return max(times) if times else None

    def prune(self, span_ms: int, watermark_ms: int | None = None) -> None:
        """Forget what lies wholly more than `span_ms` before the agent's newest event (keeping
        the point that opens the interval in force at the horizon). The horizon follows event
        time, not the wall clock, so a backfill of an old day is exact; `watermark_ms` (the
        slowest partition's progress) holds it back while partitions are consumed unevenly."""
        if self.points and self.pruned_to is not None:
            # Pruning scans every call; skip it until the horizon (judged by the points, a
            # lower bound) has moved on by PRUNE_STEP_MS. It only bounds the state's size.
            low = min(self.points[-1].ts_ms, watermark_ms if watermark_ms is not None
                      else self.points[-1].ts_ms) - span_ms
            if low - self.pruned_to < PRUNE_STEP_MS:
                return
        newest = self.newest_ms()
        if newest is None:
            return
        horizon_ms = min(newest, watermark_ms if watermark_ms is not None else newest) - span_ms
        if self.pruned_to is not None and horizon_ms <= self.pruned_to:
            return
        carry = self._carried_ends(horizon_ms)
        self.pruned_to = horizon_ms
        keep_from = bisect_left(self.points, horizon_ms, key=_point_ts) - 1
        if keep_from > 0:
            self.points = self.points[keep_from:]
            self.floor = self.points[0].ts_ms
        self.calls = {cid: c for cid, c in self.calls.items()
                      if cid in carry
                      or any(t >= horizon_ms for t in c.ends)
                      or any(x.ts_ms >= horizon_ms for x in c.connects)
                      or (not c.ends and not c.connects)}

    def _carried_ends(self, horizon_ms: int) -> set[str]:
        """The calls whose ends before the horizon a later connect's gap may still start from:
        the latest end, and the latest of another call (a connect skips its own call's end),
        unless a logout at or after the end closes the session before the horizon."""
        ends = sorted(((t, cid) for cid, c in self.calls.items() for t in c.ends
                       if t < horizon_ms), reverse=True)
        logouts = self.logouts()
        carry: set[str] = set()
        for t, cid in ends:
            if cid in carry:
                continue
            i = bisect_left(logouts, t)
            if i < len(logouts) and logouts[i] < horizon_ms:
                break  # this session ended before the horizon, and so did every earlier one
            carry.add(cid)
            if len(carry) == 2:
                break
        return carry


def _seen(team: str | None, key: TeamKey | None) -> TeamSeen | None:
    return TeamSeen(team, key) if team is not None and key is not None else None


def _seen_json(d: Any) -> TeamSeen | None:
    return TeamSeen(d[0], TeamKey(*d[1])) if d else None


def _calls_of(d: dict[str, Any]) -> dict[str, AgentCall]:
    return {cid: AgentCall([Connect(*x) for x in c[0]], c[1], c[2], c[3]) for cid, c in d.items()}


@dataclass
class StatesPart:
    """The part of an agent's state its own `agent.state` events drive (`Parts.STATES`)."""

    points: list[Point] = field(default_factory=list)
    team: TeamSeen | None = None
    floor: int | None = None
    pruned_to: int | None = None
    has_states: bool = False
    encoded_points: EncodedPrefix | None = field(default=None, repr=False, compare=False)
    legacy_calls: CallsPart | None = None
    """Set when the stored JSON is a whole state (written before the two parts): its calls."""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StatesPart:
        if "c" in d:  # a whole state, as stores written before the two parts hold it
            states, calls = AgentState.from_json(d).split()
            states.legacy_calls = calls
            return states
        return cls([Point(*p) for p in d.get("p", [])], _seen_json(d.get("st")), d.get("f"),
                   d.get("ph"), bool(d.get("hs")))

    def encode(self) -> str:
        points, self.encoded_points = encode_list(self.points, self.encoded_points)
        return (f'{{"p":{points},"st":{dumps(self.team)},"f":{dumps(self.floor)},'
                f'"ph":{dumps(self.pruned_to)},"hs":{dumps(self.has_states)}}}')

    def clone(self) -> StatesPart:
        return StatesPart(list(self.points), self.team, self.floor, self.pruned_to,
                          self.has_states, self.encoded_points,
                          self.legacy_calls.clone() if self.legacy_calls else None)


@dataclass
class CallsPart:
    """The part of an agent's state the calls it handles drive (`Parts.CALLS`)."""

    calls: dict[str, AgentCall] = field(default_factory=dict)
    team: TeamSeen | None = None
    pruned_to: int | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CallsPart:
        return cls(_calls_of(d.get("c", {})), _seen_json(d.get("ct")), d.get("ph"))

    def encode(self) -> str:
        calls = ",".join(c.encode(cid) for cid, c in self.calls.items())
        return f'{{"c":{{{calls}}},"ct":{dumps(self.team)},"ph":{dumps(self.pruned_to)}}}'

    def clone(self) -> CallsPart:
        return CallsPart(dict(self.calls), self.team, self.pruned_to)


def _point_ts(p: Point) -> int:
    return p.ts_ms


def _point_key(p: Point) -> tuple[int, str]:
    return p.ts_ms, p.event_id


def gap_deltas(agent_id: str, inputs: GapInputs, since: int, max_gap_ms: int) -> Deltas:
    """Every gap of a connect at or after `since` (and the gap horizon), counted at the
    connect. A change at t only moves gaps of connects at or after t."""
    out = Deltas()
    if inputs.floor is not None:
        since = max(since, inputs.floor)
    ends = sorted((t, cid) for cid, c in inputs.calls.items() for t in c.ends)
    end_times = [t for t, _ in ends]
    logouts = logouts_of(inputs.points)
    for cid, call in inputs.calls.items():
        for connect_ts, campaign in call.connects:
            if connect_ts < since:
                continue
            i = bisect_right(end_times, connect_ts) - 1
            while i >= 0 and ends[i][1] == cid:
                i -= 1
            if i < 0:
                continue
            prev = end_times[i]
            j = bisect_left(logouts, prev)
            if j < len(logouts) and logouts[j] <= connect_ts:
                continue  # a logout between: the connect opens a new login session
            if not inputs.has_states and connect_ts - prev > max_gap_ms:
                continue  # no sessions known: a gap this long may span a night
            scopes = ["center", f"campaign:{campaign}", f"agent:{agent_id}"]
            if call.caller_id:
                scopes.append(f"caller_id:{call.caller_id}")
            if call.list_id:
                scopes.append(f"list:{call.list_id}")
            out.add(scopes, minute_of(connect_ts),
                    {"call_gap_ms": connect_ts - prev, "call_gaps": 1})
    return out


def logouts_of(points: list[Point]) -> list[int]:
    """Times of the `logged_out` points, ascending: where login sessions end."""
    return [p.ts_ms for p in points if p.state == "logged_out"]


def symmetric_difference(a: list[Any], b: list[Any]) -> list[Any]:
    """What is in one list and not the other, counting repeats."""
    if a == b:
        return []
    if not a or not b:  # a call's first connect or end: as below, for sorted lists
        return list(a or b)
    ca, cb = Counter(a), Counter(b)
    return list(((ca - cb) + (cb - ca)).elements())


def changed_times(before: AgentCall | None, after: AgentCall | None) -> list[int]:
    """The times at which one call's contribution to the agent's gaps changed: its added or
    removed ends and connects, and every connect if its caller ID or list changed."""
    b = before or AgentCall()
    a = after or AgentCall()
    if b == a:
        return []  # most call events: the call's gaps are as they were
    if (b.caller_id, b.list_id) != (a.caller_id, a.list_id) and (b.connects or a.connects):
        times = [x.ts_ms for x in (*b.connects, *a.connects)]
    else:
        times = [x.ts_ms for x in symmetric_difference(b.connects, a.connects)]
    times += symmetric_difference(b.ends, a.ends)
    return times


def _interval_start(iv: Interval) -> int:
    return iv[0]


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
        deltas.add_each(scopes, minute, names, sign * ms)

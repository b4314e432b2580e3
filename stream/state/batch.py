"""One batch of valid events → counter deltas, new entity states and live-state changes.

Pure: the caller loads the states the batch touches, calls `process`, and commits the outcome
atomically. Re-running it on the same input gives the same outcome, which is what makes a retry
after a commit conflict safe.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from stream.contract import Event
from stream.kpi.contributions import Thresholds
from stream.state.agent_state import (
    AgentCall,
    AgentState,
    GapInputs,
    Parts,
    changed_times,
    gap_deltas,
)
from stream.state.call_state import CallState, CallSummary, LiveCall, live_call
from stream.state.deltas import Deltas

LATE_AFTER_MS = 5 * 60_000
"""An event processed more than this after its `ts` counts as late (a pipeline-health figure)."""


class TeamMove(NamedTuple):
    """An agent's stored history leaves its old team (None: it had none) for its new one."""

    agent: str
    old_team: str | None
    new_team: str


@dataclass
class Loaded:
    """Entity states as read from the store: id → state (None when absent)."""

    calls: dict[str, CallState | None] = field(default_factory=dict)
    agents: dict[str, AgentState | None] = field(default_factory=dict)


@dataclass
class Outcome:
    deltas: Deltas
    calls: dict[str, CallState]
    agents: dict[str, AgentState]
    team_moves: list[TeamMove]
    live_calls: dict[str, LiveCall | None]
    live_agents: dict[str, dict[str, Any] | None]
    stats: Counter[str]
    agent_parts: dict[str, Parts] = field(default_factory=dict)
    """Per agent of `agents`, the parts of its state to write (`Parts`), each with its share of
    the record that outlives the state; an agent not here changed nothing."""
    teams_read: dict[str, str | None] = field(default_factory=dict)
    """Per agent whose team the batch counted in (its `team:` counters, its live call) without
    writing its state: that team (None: it had none). Its state is not version-checked, so the
    commit checks that this is still the agent's team: a team move committed meanwhile took the
    agent's history to the new team, and this batch's share must follow it there."""


def call_ids(events: Iterable[Event]) -> set[str]:
    return {e.call_id for e in events if e.call_id is not None}


def events_by_call(events: Iterable[Event]) -> dict[str, list[Event]]:
    """The call events of a batch by call, in batch order."""
    by_call: defaultdict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.call_id is not None:
            by_call[e.call_id].append(e)
    return by_call


def agents_needed(events: Iterable[Event], calls: dict[str, CallState | None]) -> set[str]:
    """Every agent whose state the batch reads: named by an event, or the agent of a call
    (with the batch's events added to what is known of it)."""
    events = list(events)
    needed = {e.agent_id for e in events if e.agent_id}
    for cid, evs in events_by_call(events).items():
        known = calls.get(cid)
        probe = (known.summary() if known else CallSummary()).folded(evs, 0)
        needed |= probe.agents
        agent = probe.attrs().agent
        if agent:
            needed.add(agent)
    return needed


def agent_calls(state: CallState) -> dict[str, AgentCall]:
    """What this call contributes to each agent's call gaps."""
    return state.agent_calls()


class _Batch:
    def __init__(self, loaded: Loaded, thresholds: Thresholds) -> None:
        self.loaded = loaded
        self.thresholds = thresholds
        self.deltas = Deltas()
        self.calls: dict[str, CallState] = {}
        self.agents: dict[str, AgentState] = {}
        self.old_teams: dict[str, str | None] = {}
        self.old_gaps: dict[str, GapInputs] = {}
        """Per agent whose gaps may change: what they depended on before the batch."""
        self.gap_since: dict[str, int] = {}
        self.live_calls: dict[str, LiveCall | None] = {}
        self.live_agents: dict[str, dict[str, Any] | None] = {}
        self.stats: Counter[str] = Counter()
        self.parts: defaultdict[str, Parts] = defaultdict(lambda: Parts.NONE)
        """Per agent, the parts of its state this batch changed or must keep others from
        changing meanwhile (`Parts`)."""
        self.teams_read: dict[str, str | None] = {}
        """Per agent, the team its `team:` counters and live calls were given (`Outcome.teams_read`)."""

    def agent(self, agent_id: str) -> AgentState:
        state = self.agents.get(agent_id)
        if state is None:
            state = self.loaded.agents.get(agent_id) or AgentState()
            self.agents[agent_id] = state
            self.old_teams[agent_id] = state.team
        return state

    def touch_gaps(self, agent_id: str, times: list[int]) -> AgentState | None:
        """Note that the agent's gaps change at `times`; they are re-derived from the earliest.
        None: the change lies wholly before the agent's gap horizon and is not tracked."""
        state = self.agent(agent_id)
        horizon = state.pruned_to
        if horizon is not None and min(times) < horizon:
            self.stats["beyond_horizon"] += 1  # gaps that old are no longer re-derived
            if max(times) < horizon:
                return None
        if agent_id not in self.old_gaps:
            self.old_gaps[agent_id] = state.gap_inputs()
        self.gap_since[agent_id] = min(self.gap_since.get(agent_id, times[0]), *times)
        return state

    def observe_teams(self, events: list[Event]) -> None:
        for e in events:
            team = e.fields.get("team_id")
            if team and e.agent_id and e.type in ("agent.state", "call.connected"):
                self.parts[e.agent_id] |= self.agent(e.agent_id).observe_team(
                    team, e.ts_ms, e.event_id, by_call=e.type == "call.connected")

    def apply_call(self, call_id: str, events: list[Event]) -> None:
        state = self.calls.get(call_id) or self.loaded.calls.get(call_id) or CallState()
        before = state.agent_calls()
        fresh = state.apply(events, self.thresholds, self.deltas)
        self.stats["duplicates"] += len(events) - len(fresh)
        if not fresh:
            return
        self.calls[call_id] = state
        after = state.agent_calls()
        for agent_id in before.keys() | after.keys():
            was, now = before.get(agent_id), after.get(agent_id)
            if was is now:
                continue  # the call's events added nothing for this agent
            times = changed_times(was, now)
            if not times:
                continue  # e.g. a late call.qa: the call's gaps are as they were
            agent = self.touch_gaps(agent_id, times)
            if agent is None:
                continue
            if now is not None:
                agent.calls[call_id] = now
            else:
                agent.calls.pop(call_id, None)
            self.parts[agent_id] |= Parts.CALLS  # its gaps read sessions: changed with BOTH
        of_call = state.attrs().agent
        live = self.live_calls[call_id] = live_call(state, self.team_of(of_call))
        if live is not None and of_call is not None:
            self.teams_read[of_call] = live["team"]

    def team_of(self, agent_id: str | None) -> str | None:
        """The agent's team as this batch leaves it, without touching (and so rewriting) the
        agent's state."""
        if agent_id is None:
            return None
        state = self.agents.get(agent_id) or self.loaded.agents.get(agent_id)
        return state.team if state is not None else None

    def apply_agent(self, agent_id: str, events: list[Event]) -> None:
        state = self.agent(agent_id)
        if agent_id not in self.old_gaps:
            self.old_gaps[agent_id] = state.gap_inputs()
        if not state.has_states:  # its gaps now follow login sessions, not the cap
            state.has_states = True
            self.gap_since[agent_id] = -(2**62)
            self.parts[agent_id] |= Parts.BOTH
        applied = state.add_points(agent_id, events, self.deltas)
        self.stats["duplicates"] += len(events) - applied.added - applied.beyond
        self.stats["beyond_horizon"] += applied.beyond
        if applied.added:
            self.parts[agent_id] |= Parts.STATES
            self.live_agents[agent_id] = live_agent(state)
            logouts = [e.ts_ms for e in events if e.fields.get("state") == "logged_out"]
            if logouts:  # a new session boundary: gaps across it from there on change
                self.gap_since[agent_id] = min(self.gap_since.get(agent_id, logouts[0]), *logouts)
                self.parts[agent_id] |= Parts.BOTH  # the gaps read the calls part

    def finish(self, agent_state_ms: int, watermark_ms: int | None = None) -> Outcome:
        max_gap = self.thresholds.max_call_gap_ms
        for agent_id, old in self.old_gaps.items():
            since = self.gap_since.get(agent_id)
            if since is None:
                continue
            new = self.agents[agent_id].gap_inputs()
            self.deltas.merge(gap_deltas(agent_id, new, since, max_gap))
            self.deltas.merge(gap_deltas(agent_id, old, since, max_gap), sign=-1)
        moves: list[TeamMove] = []
        for agent_id, state in self.agents.items():
            old_team = self.old_teams[agent_id]
            if state.team is not None and state.team != old_team:
                moves.append(TeamMove(agent_id, old_team, state.team))
                if agent_id not in self.live_agents:
                    self.live_agents[agent_id] = live_agent(state)
            horizon = state.pruned_to
            state.prune(agent_state_ms, watermark_ms)
            if state.pruned_to != horizon:  # both parts cut, and the gap horizon moved
                self.parts[agent_id] |= Parts.BOTH
        parts = {a: p for a, p in self.parts.items() if p}
        deltas = with_teams(self.deltas, self.agents, self.loaded.agents, self.teams_read)
        read = {a: t for a, t in self.teams_read.items() if a not in parts}
        return Outcome(deltas, self.calls, self.agents, moves, self.live_calls, self.live_agents,
                       self.stats, parts, read)


def live_agent(state: AgentState) -> dict[str, Any] | None:
    """The agent's current state for the wallboard (None: logged out, not on the board)."""
    point = state.current()
    if point is None or point[2] == "logged_out":
        return None
    ts, _, st, reason, campaign = point
    return {"state": st, "since": ts, "reason": reason, "campaign": campaign, "team": state.team}


def with_teams(deltas: Deltas, agents: dict[str, AgentState],
               loaded: dict[str, AgentState | None], teams_read: dict[str, str | None]) -> Deltas:
    """Every `agent:` delta also counts for the agent's (final) team (added in place);
    `teams_read` gets the team (or None) each agent's deltas were given."""
    for scope, minute, counters in deltas.groups("agent:"):
        agent_id = scope[6:]
        state = agents.get(agent_id) or loaded.get(agent_id)
        teams_read[agent_id] = state.team if state is not None else None
        if state is not None and state.team:
            team = deltas.group(f"team:{state.team}", minute)
            for name, value in counters.items():
                team[name] += value
    return deltas


def process(events: list[Event], loaded: Loaded, thresholds: Thresholds, *, now_ms: int,
            agent_state_ms: int, watermark_ms: int | None = None) -> Outcome:
    """Apply a batch of valid events (in arrival order) to the loaded states."""
    batch = _Batch(loaded, thresholds)
    batch.observe_teams(events)
    by_call: defaultdict[str, list[Event]] = defaultdict(list)
    by_agent: defaultdict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.call_id is not None:
            by_call[e.call_id].append(e)
        elif e.agent_id is not None:
            by_agent[e.agent_id].append(e)
        if now_ms - e.ts_ms > LATE_AFTER_MS:
            batch.stats["late"] += 1
    for call_id, evs in by_call.items():
        batch.apply_call(call_id, evs)
    for agent_id, evs in by_agent.items():
        batch.apply_agent(agent_id, evs)
    batch.stats["accepted"] += len(events)
    return batch.finish(agent_state_ms, watermark_ms)

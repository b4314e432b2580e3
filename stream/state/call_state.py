"""Per-call state: the call's events, from which its attribution follows in any arrival order.

A call's agent, caller ID, list, variant, direction (inbound once it has a `call.offered`) and
first connect are functions of the *set* of its events (not of their arrival order), so a late
`call.dialed`, `call.offered` or `call.connected` re-attributes the earlier events exactly: the
worker subtracts what they counted under the old attribution and adds what they count under the
new one, in their own buckets (an abandon seen before its call's `call.offered` moves from
`abandoned` to `inbound_abandoned`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Literal, TypedDict
from zoneinfo import ZoneInfo

from stream.contract import Event
from stream.kpi.contributions import Thresholds, call_counters
from stream.kpi.retention import PERIODS, SALE_DISPOSITION, period_of
from stream.kpi.windows import MINUTE_MS, minute_of
from stream.state.agent_state import AgentCall, Connect
from stream.state.deltas import Deltas
from stream.state.encoding import EncodedPrefix, encode_list


@dataclass(frozen=True, slots=True)
class CallAttrs:
    """Who and what a call counts for, beyond its events' own fields."""

    agent: str | None = None
    caller_id: str | None = None
    list_id: str | None = None
    variant: str | None = None
    inbound: bool = False
    """The call has a `call.offered` (contract 1.1)."""
    first_connect: str | None = None
    """event_id of the call's earliest `call.connected`: where an inbound answer is counted."""
    lead: str | None = None
    """`lead_id` of the earliest `call.dialed`: the customer of the call's sales (retention)."""


def _earlier(e: Event, best: Event | None) -> bool:
    """`e` comes before `best` by (ts, event_id): the order `min` picks the first of a kind by
    (on a tie, as with an event and its redelivered copy, the one seen first stays)."""
    return best is None or e.ts_ms < best.ts_ms or (e.ts_ms == best.ts_ms
                                                    and e.event_id < best.event_id)


_OUTCOMES = frozenset({"call.ended", "call.unanswered", "call.abandoned"})


class CallSummary:
    """The earliest event of each kind a call's attribution and live status depend on, folded
    over its events in order, so that a batch folds in only the events it adds (the same
    earliest events `resolve_attrs`'s definition picks, in any arrival order). Never changed
    once made: `folded` makes a new one, so clones of a state can share it."""

    __slots__ = ("count", "last", "connected", "connected_by_agent", "dialed", "dialed_by_agent",
                 "offered", "answered", "outcome", "agents", "_attrs", "_scopes")

    def __init__(self) -> None:
        self.count = 0
        """how many of the call's first events this summarises"""
        self.last: Event | None = None
        """the last of them (by identity: the summary is valid while the list still has it)"""
        self.connected: Event | None = None
        self.connected_by_agent: Event | None = None
        self.dialed: Event | None = None
        self.dialed_by_agent: Event | None = None
        self.offered: Event | None = None
        self.answered: Event | None = None
        self.outcome = False
        """the call has ended, gone unanswered or been abandoned"""
        self.agents: frozenset[str] = frozenset()
        """every agent its events name"""
        self._attrs: CallAttrs | None = None
        self._scopes: dict[tuple[str | None, str | None], tuple[str, ...]] = {}

    def folded(self, events: list[Event], start: int) -> CallSummary:
        """The summary of the events summarised here followed by `events[start:]` (a state's
        whole list, from the first event not summarised yet)."""
        s = CallSummary.__new__(CallSummary)
        s.connected, s.connected_by_agent = self.connected, self.connected_by_agent
        s.dialed, s.dialed_by_agent = self.dialed, self.dialed_by_agent
        s.offered, s.answered = self.offered, self.answered
        s.outcome, s.agents = self.outcome, self.agents
        for e in events[start:]:
            kind, agent = e.type, e.agent_id
            if kind == "call.connected":
                if _earlier(e, s.connected):
                    s.connected = e
                if agent and _earlier(e, s.connected_by_agent):
                    s.connected_by_agent = e
            elif kind == "call.dialed":
                if _earlier(e, s.dialed):
                    s.dialed = e
                if agent and _earlier(e, s.dialed_by_agent):
                    s.dialed_by_agent = e
            elif kind == "call.offered":
                if _earlier(e, s.offered):
                    s.offered = e
            elif kind == "call.answered":
                if _earlier(e, s.answered):
                    s.answered = e
            elif kind in _OUTCOMES:
                s.outcome = True
            if agent and agent not in s.agents:
                s.agents = s.agents | {agent}
        s.count = self.count + max(0, len(events) - start)
        s.last = events[-1] if len(events) > start else self.last
        same = self.count > 0 and (s.connected_by_agent is self.connected_by_agent and s.dialed is self.dialed
                and s.dialed_by_agent is self.dialed_by_agent
                and (s.offered is None) == (self.offered is None))
        s._attrs, s._scopes = (self._attrs, self._scopes) if same else (None, {})
        return s

    def covers(self, events: list[Event]) -> bool:
        """Whether this summarises a prefix of `events` (events are only ever added at the end)."""
        n = self.count
        return n <= len(events) and (n == 0 or events[n - 1] is self.last)

    def attrs(self) -> CallAttrs:
        """`resolve_attrs` of the summarised events."""
        if self._attrs is None:
            connected, dialed = self.connected_by_agent, self.dialed
            agent = connected.agent_id if connected else (
                self.dialed_by_agent.agent_id if self.dialed_by_agent else None)
            inbound = self.offered is not None
            first_connect = connected.event_id if connected else None
            if dialed is None:
                self._attrs = CallAttrs(agent=agent, inbound=inbound, first_connect=first_connect)
            else:
                f = dialed.fields
                self._attrs = CallAttrs(agent, f.get("caller_id"), f.get("list_id"),
                                        f.get("variant"), inbound, first_connect,
                                        f.get("lead_id"))
        return self._attrs

    def scopes(self, e: Event) -> tuple[str, ...]:
        """`scopes_of(e, self.attrs())`, kept per campaign and agent of the event."""
        key = (e.campaign_id, e.agent_id)
        scopes = self._scopes.get(key)
        if scopes is None:
            scopes = self._scopes[key] = tuple(scopes_of(e, self.attrs()))
        return scopes


_NO_EVENTS = CallSummary()


def resolve_attrs(events: list[Event]) -> CallAttrs:
    """The agent of the earliest `call.connected`, else of `call.dialed`; caller ID, list and
    variant of the earliest `call.dialed` (ties broken by event_id, so arrival order never
    matters); inbound when any event is a `call.offered`."""
    return _NO_EVENTS.folded(events, 0).attrs()


def event_agent(e: Event, attrs: CallAttrs) -> str | None:
    """The event's own agent if it names one, otherwise the call's agent."""
    return e.agent_id or attrs.agent


def scopes_of(e: Event, attrs: CallAttrs) -> list[str]:
    """Every scope a call event counts in, except `team:` (added from the agent's team)."""
    scopes = ["center", f"campaign:{e.campaign_id}"]
    agent = event_agent(e, attrs)
    if agent:
        scopes.append(f"agent:{agent}")
    if attrs.caller_id:
        scopes.append(f"caller_id:{attrs.caller_id}")
    if attrs.list_id:
        scopes.append(f"list:{attrs.list_id}")
    if attrs.variant:
        scopes.append(f"variant:{attrs.variant}")
    return scopes


def counters_of(e: Event, attrs: CallAttrs, thresholds: Thresholds) -> dict[str, float]:
    """What the event counts given its call's attributes (direction and first connect)."""
    return call_counters(e, thresholds, attrs.inbound, e.event_id == attrs.first_connect)


class CallState:
    """The events of one call (deduplicated by event_id), serialised into the store."""

    __slots__ = ("events", "_ids", "_summary", "_agent_calls", "_encoded")

    def __init__(self, events: list[Event] | None = None) -> None:
        self.events: list[Event] = events or []
        self._ids = {e.event_id for e in self.events}
        self._summary: CallSummary = _NO_EVENTS
        self._agent_calls: tuple[CallSummary, dict[str, AgentCall]] | None = None
        """The calls' contribution to its agents' gaps, and the summary it was derived for."""
        self._encoded: EncodedPrefix | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallState:
        return cls([Event.from_dict(d) for d in data["events"]])

    def to_json(self) -> dict[str, Any]:
        return {"events": [e.to_dict() for e in self.events]}

    def encode(self) -> str:
        """`dumps(self.to_json())`, encoding only the events not encoded before (events are
        only ever added at the end)."""
        events, self._encoded = encode_list(self.events, self._encoded, Event.to_dict)
        return f'{{"events":{events}}}'

    def clone(self) -> CallState:
        """An independent copy to process (events themselves are never changed, nor are the
        summary and agent calls it shares: they are replaced)."""
        copy = CallState.__new__(CallState)
        copy.events, copy._ids = list(self.events), set(self._ids)
        copy._summary, copy._agent_calls = self._summary, self._agent_calls
        copy._encoded = self._encoded
        return copy

    def has(self, event_id: str) -> bool:
        return event_id in self._ids

    def summary(self) -> CallSummary:
        """The summary of all the call's events (folding in those added since the last)."""
        s, events = self._summary, self.events
        if s.count == len(events) and (s.count == 0 or events[-1] is s.last):
            return s
        s = s.folded(events, s.count) if s.covers(events) else _NO_EVENTS.folded(events, 0)
        self._summary = s
        return s

    def attrs(self) -> CallAttrs:
        return self.summary().attrs()

    def agent_calls(self) -> dict[str, AgentCall]:
        """What this call contributes to each agent's call gaps (`agent_calls_of`); derived
        again only from the events added since, unless the call's attribution changed. The
        dict and its entries are shared: replace them, never change them."""
        s = self.summary()
        cached = self._agent_calls
        if cached is not None and cached[0] is s:
            return cached[1]
        attrs = s.attrs()
        if cached is not None and cached[0].covers(self.events) and _same_gap_attrs(
                cached[0].attrs(), attrs):
            out = _extend_agent_calls(cached[1], self.events[cached[0].count:], attrs)
        else:
            out = agent_calls_of(self.events, attrs)
        self._agent_calls = (s, out)
        return out

    def last_ts(self) -> int:
        return max(e.ts_ms for e in self.events)

    def apply(self, new: list[Event], thresholds: Thresholds, deltas: Deltas) -> list[Event]:
        """Add new (not yet seen) events; write their counters and any re-attribution to
        `deltas`. Returns the events that were new (the rest were duplicates)."""
        ids = self._ids
        fresh: list[Event] = []
        for e in new:
            if e.event_id not in ids:
                ids.add(e.event_id)
                fresh.append(e)
        if not fresh:
            return fresh
        old_attrs = self.attrs()
        known = len(self.events)
        self.events.extend(fresh)
        summary = self.summary()
        new_attrs = summary.attrs()
        if new_attrs is not old_attrs and new_attrs != old_attrs:
            old_events = self.events[:known]
            for e in old_events:
                _reattribute(e, old_attrs, new_attrs, thresholds, deltas)
            if new_attrs.lead != old_attrs.lead:
                for e in old_events:
                    _lead_sale(e, old_attrs.lead, thresholds, deltas, -1)
                    _lead_sale(e, new_attrs.lead, thresholds, deltas, 1)
        inbound, first_connect, lead = new_attrs.inbound, new_attrs.first_connect, new_attrs.lead
        for e in fresh:
            counters = call_counters(e, thresholds, inbound, e.event_id == first_connect)
            if counters:
                deltas.add(summary.scopes(e), e.ts_ms - e.ts_ms % MINUTE_MS, counters)
            if lead is not None and e.type == "call.wrapup":
                _lead_sale(e, lead, thresholds, deltas, 1)
        return fresh


def agent_calls_of(events: list[Event], attrs: CallAttrs) -> dict[str, AgentCall]:
    """What a call with these events and attributes contributes to each agent's call gaps:
    its agents' connects, and its ends (an end names its agent, or is the call's agent's)."""
    out: dict[str, AgentCall] = {}
    for e in events:
        if e.type == "call.connected" and e.agent_id:
            entry = out.setdefault(e.agent_id, AgentCall(caller_id=attrs.caller_id,
                                                         list_id=attrs.list_id))
            entry.connects.append(Connect(e.ts_ms, e.campaign_id or ""))
        elif e.type == "call.ended":
            agent = event_agent(e, attrs)
            if agent:
                entry = out.setdefault(agent, AgentCall(caller_id=attrs.caller_id,
                                                        list_id=attrs.list_id))
                entry.ends.append(e.ts_ms)
    for entry in out.values():
        entry.connects.sort()
        entry.ends.sort()
    return out


def _same_gap_attrs(a: CallAttrs, b: CallAttrs) -> bool:
    """Whether two attributions give the same agent calls for the same events."""
    return a is b or (a.agent, a.caller_id, a.list_id) == (b.agent, b.caller_id, b.list_id)


def _extend_agent_calls(known: dict[str, AgentCall], added: list[Event],
                        attrs: CallAttrs) -> dict[str, AgentCall]:
    """`agent_calls_of(events + added)` from `known` (that of `events`), both under `attrs`:
    the agents `added` reaches get new entries (copies with the added connects and ends, in
    order); the others keep theirs."""
    out: dict[str, AgentCall] | None = None
    touched: dict[str, AgentCall] = {}
    for e in added:
        kind = e.type
        if kind == "call.connected" and e.agent_id:
            agent: str | None = e.agent_id
        elif kind == "call.ended":
            agent = e.agent_id or attrs.agent
            if not agent:
                continue
        else:
            continue
        assert agent is not None
        entry = touched.get(agent)
        if entry is None:
            if out is None:
                out = dict(known)
            prev = out.get(agent)
            entry = (AgentCall(list(prev.connects), list(prev.ends), prev.caller_id, prev.list_id)
                     if prev is not None else
                     AgentCall(caller_id=attrs.caller_id, list_id=attrs.list_id))
            touched[agent] = out[agent] = entry
        if kind == "call.ended":
            entry.ends.append(e.ts_ms)
        else:
            entry.connects.append(Connect(e.ts_ms, e.campaign_id or ""))
    for entry in touched.values():
        entry.connects.sort()
        entry.ends.sort()
    return known if out is None else out


def _reattribute(e: Event, old: CallAttrs, new: CallAttrs, thresholds: Thresholds,
                 deltas: Deltas) -> None:
    before = set(scopes_of(e, old))
    after = set(scopes_of(e, new))
    counted, counts = counters_of(e, old, thresholds), counters_of(e, new, thresholds)
    minute = minute_of(e.ts_ms)
    if counted == counts:
        if before != after:
            deltas.add(sorted(after - before), minute, counts)
            deltas.add(sorted(before - after), minute, counts, sign=-1)
        return
    deltas.add(sorted(before), minute, counted, sign=-1)
    deltas.add(sorted(after), minute, counts)


def _lead_sale(e: Event, lead: str | None, thresholds: Thresholds, deltas: Deltas,
               sign: int) -> None:
    """A sale wrap-up puts its call's lead in the retention sets of the center and the
    campaign, for the local week and month of the wrap-up (`stream.kpi.retention`)."""
    if lead is None or e.type != "call.wrapup" or e.fields.get("disposition") != SALE_DISPOSITION:
        return
    tz = thresholds.timezone
    if not isinstance(tz, tzinfo):
        tz = ZoneInfo(tz)
    for period in PERIODS:
        span = period_of(period, e.ts_ms, tz)
        for scope in ("center", f"campaign:{e.campaign_id}"):
            deltas.leads[(scope, period, span.id, lead)] += sign


LiveStatus = Literal["ringing", "waiting", "talking"]


class LiveCall(TypedDict):
    """A call in progress as `live:calls` stores it (JSON) and the live views filter it: by
    campaign, agent, caller ID, list, and the team of its agent."""

    status: LiveStatus
    since: int
    """epoch ms the call entered `status`"""
    campaign: str | None
    agent: str | None
    caller_id: str | None
    list: str | None
    team: str | None
    """the team of the call's agent when the call was last written (None: no agent yet)"""


def live_call(state: CallState, team: str | None = None) -> LiveCall | None:
    """The call's live status for the wallboard, or None once it has an outcome.

    ringing: dialed, no outcome yet; waiting: a person answered, no agent yet; talking: an agent
    is connected and the call has not ended. `team`: the team of the call's agent (the call
    state does not know teams; the batch step does).
    """
    s = state.summary()
    if s.outcome:
        return None
    attrs = s.attrs()

    def live(status: LiveStatus, since: int) -> LiveCall:
        return LiveCall(status=status, since=since, campaign=state.events[0].campaign_id,
                        agent=attrs.agent, caller_id=attrs.caller_id, list=attrs.list_id,
                        team=team if attrs.agent else None)

    if s.connected is not None:
        return live("talking", s.connected.ts_ms)
    if s.offered is not None:  # inbound: waiting in its queue until an agent takes it
        return live("waiting", s.offered.ts_ms)
    answered = s.answered
    if answered is not None:
        if answered.fields.get("answered_by") == "human":
            return live("waiting", answered.ts_ms)
        return None
    if s.dialed is not None:
        return live("ringing", s.dialed.ts_ms)
    return None

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
from stream.kpi.windows import minute_of
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


def _first(events: list[Event], kind: str, need_agent: bool = False) -> Event | None:
    found = [e for e in events if e.type == kind and (not need_agent or e.agent_id)]
    return min(found, key=lambda e: (e.ts_ms, e.event_id)) if found else None


def resolve_attrs(events: list[Event]) -> CallAttrs:
    """The agent of the earliest `call.connected`, else of `call.dialed`; caller ID, list and
    variant of the earliest `call.dialed` (ties broken by event_id, so arrival order never
    matters); inbound when any event is a `call.offered`."""
    connected = _first(events, "call.connected", need_agent=True)
    dialed = _first(events, "call.dialed")
    dialed_with_agent = _first(events, "call.dialed", need_agent=True)
    agent = connected.agent_id if connected else (
        dialed_with_agent.agent_id if dialed_with_agent else None)
    inbound = any(e.type == "call.offered" for e in events)
    first_connect = connected.event_id if connected else None
    if dialed is None:
        return CallAttrs(agent=agent, inbound=inbound, first_connect=first_connect)
    f = dialed.fields
    return CallAttrs(agent, f.get("caller_id"), f.get("list_id"), f.get("variant"), inbound,
                     first_connect, f.get("lead_id"))


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

    __slots__ = ("events", "_ids", "_attrs", "_encoded")

    def __init__(self, events: list[Event] | None = None) -> None:
        self.events: list[Event] = events or []
        self._ids = {e.event_id for e in self.events}
        self._attrs: CallAttrs | None = None
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
        """An independent copy to process (events themselves are never changed)."""
        copy = CallState.__new__(CallState)
        copy.events, copy._ids, copy._attrs = list(self.events), set(self._ids), self._attrs
        copy._encoded = self._encoded
        return copy

    def has(self, event_id: str) -> bool:
        return event_id in self._ids

    def attrs(self) -> CallAttrs:
        if self._attrs is None:
            self._attrs = resolve_attrs(self.events)
        return self._attrs

    def last_ts(self) -> int:
        return max(e.ts_ms for e in self.events)

    def apply(self, new: list[Event], thresholds: Thresholds, deltas: Deltas) -> list[Event]:
        """Add new (not yet seen) events; write their counters and any re-attribution to
        `deltas`. Returns the events that were new (the rest were duplicates)."""
        fresh: list[Event] = []
        for e in new:
            if e.event_id not in self._ids:
                self._ids.add(e.event_id)
                fresh.append(e)
        if not fresh:
            return fresh
        old_attrs = self.attrs()
        old_events = list(self.events)
        self.events.extend(fresh)
        self._attrs = None
        new_attrs = self.attrs()
        if new_attrs != old_attrs:
            for e in old_events:
                _reattribute(e, old_attrs, new_attrs, thresholds, deltas)
            if new_attrs.lead != old_attrs.lead:
                for e in old_events:
                    _lead_sale(e, old_attrs.lead, thresholds, deltas, -1)
                    _lead_sale(e, new_attrs.lead, thresholds, deltas, 1)
        for e in fresh:
            counters = counters_of(e, new_attrs, thresholds)
            if counters:
                deltas.add(scopes_of(e, new_attrs), minute_of(e.ts_ms), counters)
            _lead_sale(e, new_attrs.lead, thresholds, deltas, 1)
        return fresh


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
    kinds = {e.type for e in state.events}
    if kinds & {"call.ended", "call.unanswered", "call.abandoned"}:
        return None
    attrs = state.attrs()

    def live(status: LiveStatus, since: int) -> LiveCall:
        return LiveCall(status=status, since=since, campaign=state.events[0].campaign_id,
                        agent=attrs.agent, caller_id=attrs.caller_id, list=attrs.list_id,
                        team=team if attrs.agent else None)

    connected = _first(state.events, "call.connected")
    if connected is not None:
        return live("talking", connected.ts_ms)
    offered = _first(state.events, "call.offered")
    if offered is not None:  # inbound: waiting in its queue until an agent takes it
        return live("waiting", offered.ts_ms)
    answered = _first(state.events, "call.answered")
    if answered is not None:
        if answered.fields.get("answered_by") == "human":
            return live("waiting", answered.ts_ms)
        return None
    dialed = _first(state.events, "call.dialed")
    if dialed is not None:
        return live("ringing", dialed.ts_ms)
    return None

"""A call's attribution, live status and agent calls, folded in batch by batch from the events a
batch adds (`CallSummary`, `CallState.agent_calls`), equal what their definitions give when
re-derived from all the call's events (the form they had before: kept here as the reference),
after every batch, in any arrival order and batching, with duplicates, reordering and late
events (the simulator's faults), through clones as the worker's state cache hands them out."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.contract import Event
from stream.kpi.contributions import Thresholds
from stream.state.agent_state import AgentCall
from stream.state.batch import agents_needed, events_by_call
from stream.state.call_state import CallAttrs, CallState, LiveCall, agent_calls_of, live_call
from stream.state.deltas import Deltas
from tests.properties.test_batching import simulated


def reference_first(events: list[Event], kind: str, need_agent: bool = False) -> Event | None:
    found = [e for e in events if e.type == kind and (not need_agent or e.agent_id)]
    return min(found, key=lambda e: (e.ts_ms, e.event_id)) if found else None


def reference_attrs(events: list[Event]) -> CallAttrs:
    connected = reference_first(events, "call.connected", need_agent=True)
    dialed = reference_first(events, "call.dialed")
    dialed_with_agent = reference_first(events, "call.dialed", need_agent=True)
    agent = connected.agent_id if connected else (
        dialed_with_agent.agent_id if dialed_with_agent else None)
    inbound = any(e.type == "call.offered" for e in events)
    first_connect = connected.event_id if connected else None
    if dialed is None:
        return CallAttrs(agent=agent, inbound=inbound, first_connect=first_connect)
    f = dialed.fields
    return CallAttrs(agent, f.get("caller_id"), f.get("list_id"), f.get("variant"), inbound,
                     first_connect, f.get("lead_id"))


def reference_agent_calls(events: list[Event]) -> dict[str, AgentCall]:
    """The full derivation (`agent_calls_of`, also the production path when an attribution
    changes) over the reference attribution."""
    return agent_calls_of(events, reference_attrs(events))


def reference_live(events: list[Event], team: str | None) -> LiveCall | None:
    if {e.type for e in events} & {"call.ended", "call.unanswered", "call.abandoned"}:
        return None
    attrs = reference_attrs(events)

    def live(status: str, since: int) -> LiveCall:
        return LiveCall(status=status, since=since, campaign=events[0].campaign_id,  # type: ignore[typeddict-item]
                        agent=attrs.agent, caller_id=attrs.caller_id, list=attrs.list_id,
                        team=team if attrs.agent else None)

    for kind, status in (("call.connected", "talking"), ("call.offered", "waiting")):
        first = reference_first(events, kind)
        if first is not None:
            return live(status, first.ts_ms)
    answered = reference_first(events, "call.answered")
    if answered is not None:
        return live("waiting", answered.ts_ms) if answered.fields.get("answered_by") == "human" else None
    dialed = reference_first(events, "call.dialed")
    return live("ringing", dialed.ts_ms) if dialed is not None else None


def reference_agents_needed(events: list[Event], calls: dict[str, CallState | None]) -> set[str]:
    needed = {e.agent_id for e in events if e.agent_id}
    for cid, evs in events_by_call(events).items():
        known = calls.get(cid)
        probe = [*(known.events if known else []), *evs]
        attrs = reference_attrs(probe)
        needed |= {a for e in probe for a in [e.agent_id or attrs.agent] if a}
        if attrs.agent:
            needed.add(attrs.agent)
    return needed


@cache
def calls_of(seed: int) -> tuple[tuple[Event, ...], ...]:
    """The simulated stream's call events, per call, in delivery order (duplicates included)."""
    return tuple(tuple(evs) for evs in events_by_call(simulated(seed)).values())


@st.composite
def cut_calls(draw: st.DrawFn) -> tuple[int, list[int], int]:
    seed = draw(st.integers(0, 7))
    return seed, draw(st.lists(st.integers(0, 12), max_size=6)), draw(st.integers(0, 2**31))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut_calls())
def test_folded_call_state_equals_its_definition_after_every_batch(
        case: tuple[int, list[int], int]) -> None:
    seed, cuts, salt = case
    thresholds = Thresholds()
    calls = calls_of(seed)
    for i, events in enumerate(calls):
        if (i + salt) % 3:  # a third of the calls per example keeps it quick
            continue
        state = CallState()
        start = 0
        for cut in [*sorted(c for c in set(cuts) if c < len(events)), len(events)]:
            batch = list(events[start:cut])
            start = max(start, cut)
            if not batch:
                continue
            assert agents_needed(batch, {"c": state}) == reference_agents_needed(batch, {"c": state})
            state = state.clone()  # as the state cache hands it out
            state.apply(batch, thresholds, Deltas())
            assert state.attrs() == reference_attrs(state.events)
            assert state.agent_calls() == reference_agent_calls(state.events)
            assert live_call(state, "t1") == reference_live(state.events, "t1")
        fresh = CallState(list(state.events))  # as loaded from the store: derived at once
        assert fresh.attrs() == state.attrs() and fresh.agent_calls() == state.agent_calls()


def test_the_calls_cover_what_the_summary_tracks() -> None:
    kinds = {e.type for evs in calls_of(0) for e in evs}
    assert {"call.dialed", "call.connected", "call.answered", "call.ended", "call.wrapup"} <= kinds
    assert sum(len(evs) for evs in calls_of(0)) > 200


FIELDS: dict[str, dict[str, object]] = {
    "call.dialed": {"caller_id": "D1", "list_id": "L1", "lead_id": "K1"},
    "call.offered": {},
    "call.answered": {"answered_by": "human"},
    "call.connected": {"wait_ms": 1500},
    "call.ended": {"talk_ms": 40_000},
    "call.unanswered": {"reason": "no_answer"},
    "call.abandoned": {"wait_ms": 3000, "reason": "caller_hangup"},
    "call.wrapup": {"wrapup_ms": 9000, "disposition": "sale"},
}


@st.composite
def hand_calls(draw: st.DrawFn) -> list[Event]:
    """One call's events as a dialer might send them, with what the simulator lacks: inbound
    calls, transfers (two agents), agent-less ends, tied times and reused event ids with other
    content."""
    n = draw(st.integers(1, 9))
    out = []
    for _ in range(n):
        kind = draw(st.sampled_from(sorted(FIELDS)))
        fields: dict[str, object] = dict(FIELDS[kind])
        if kind == "call.dialed":
            fields["caller_id"] = draw(st.sampled_from(["D1", "D2"]))
        if kind == "call.answered":
            fields["answered_by"] = draw(st.sampled_from(["human", "machine"]))
        agent = draw(st.sampled_from([None, "a1", "a2"]))
        out.append(Event.from_dict({
            "event_id": f"e{draw(st.integers(0, 11))}", "type": kind, "ts": draw(st.integers(0, 5)) * 30_000,
            "call_id": "C", "campaign_id": "c1", **({"agent_id": agent} if agent else {}), **fields}))
    return out


@settings(max_examples=300, deadline=None)
@given(hand_calls(), st.lists(st.integers(0, 9), max_size=4))
def test_folded_call_state_equals_its_definition_for_any_call(events: list[Event],
                                                              cuts: list[int]) -> None:
    state, start = CallState(), 0
    for cut in [*sorted(set(cuts)), len(events)]:
        batch = events[start:cut]
        start = max(start, cut)
        if not batch:
            continue
        assert agents_needed(batch, {"C": state}) == reference_agents_needed(batch, {"C": state})
        state = state.clone()
        state.apply(batch, Thresholds(), Deltas())
        assert state.attrs() == reference_attrs(state.events)
        assert state.agent_calls() == reference_agent_calls(state.events)
        assert live_call(state, "t1") == reference_live(state.events, "t1")

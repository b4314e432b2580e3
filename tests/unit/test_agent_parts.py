"""Which parts of an agent's state a batch writes (`Parts`): what the agent's own `agent.state`
events change is the states part, what its calls change is the calls part, and whatever the
other part's updates read (sessions, the team, the pruning horizon) is both. The two parts
joined again are the state they were split from."""

from __future__ import annotations

import json

from stream.contract import Event
from stream.kpi.contributions import Thresholds
from stream.state.agent_state import AgentRecord, AgentState, CallsPart, Parts, StatesPart
from stream.state.batch import Loaded, Outcome, process

MIN = 60_000
T0 = 10 * 3_600_000


def state(eid: str, t: int, st: str, team: str = "t1") -> Event:
    return Event(event_id=eid, type="agent.state", ts_ms=t, campaign_id="c1", call_id=None,
                 agent_id="a1", fields={"state": st, "team_id": team})


def call(cid: str, t: int, team: str = "t1") -> list[Event]:
    return [Event(event_id=f"{cid}-c", type="call.connected", ts_ms=t, campaign_id="c1",
                  call_id=cid, agent_id="a1", fields={"team_id": team, "wait_ms": 1000}),
            Event(event_id=f"{cid}-e", type="call.ended", ts_ms=t + MIN, campaign_id="c1",
                  call_id=cid, agent_id="a1", fields={"talk_ms": MIN})]


def run(loaded: Loaded, events: list[Event]) -> Outcome:
    return process(events, loaded, Thresholds(), now_ms=T0 + 60 * MIN, agent_state_ms=6 * 60 * MIN)


def settled() -> Loaded:
    """An agent logged in, on a call before, pruned once (as after its first batches)."""
    first = run(Loaded(), [state("s0", T0, "available"), *call("k0", T0 + MIN)])
    return Loaded(calls=dict(first.calls), agents=dict(first.agents))


def parts(events: list[Event]) -> Parts:
    return run(settled(), events).agent_parts.get("a1", Parts.NONE)


def test_the_agents_own_states_write_the_states_part() -> None:
    assert parts([state("s1", T0 + 5 * MIN, "paused"), state("s2", T0 + 6 * MIN, "available")]) == Parts.STATES


def test_the_calls_it_handles_write_the_calls_part() -> None:
    assert parts(call("k1", T0 + 5 * MIN)) == Parts.CALLS


def test_what_the_other_part_reads_writes_both() -> None:
    assert parts([state("s1", T0 + 5 * MIN, "logged_out")]) == Parts.BOTH  # sessions: the gaps
    assert parts([state("s1", T0 + 5 * MIN, "available", team="t2")]) == Parts.BOTH  # a team move
    assert parts(call("k1", T0 + 5 * MIN, team="t2")) == Parts.BOTH
    assert run(Loaded(), [state("s0", T0, "available")]).agent_parts["a1"] == Parts.BOTH  # first
    later = [state("s9", T0 + 7 * 60 * MIN, "available")]  # its horizon moved on: pruned
    assert parts(later) == Parts.BOTH


def test_a_duplicate_writes_nothing() -> None:
    assert parts([state("s0", T0, "available")]) == Parts.NONE


def test_split_and_join_give_the_state_back_also_from_a_whole_state() -> None:
    agent = run(settled(), [*call("k1", T0 + 5 * MIN, team="t2"), state("s1", T0 + 3 * MIN, "paused")]).agents["a1"]
    states, calls = agent.split()
    again = AgentState.join(StatesPart.from_json(json.loads(states.encode())),
                            CallsPart.from_json(json.loads(calls.encode())))
    assert again is not None and again.to_json() == agent.to_json() and again.team == "t2"
    whole = StatesPart.from_json(json.loads(agent.encode()))  # as stores before the parts hold it
    assert whole.legacy_calls is not None
    legacy = AgentState.join(whole, whole.legacy_calls)
    assert legacy is not None and legacy.to_json() == agent.to_json()


def test_the_two_shares_of_the_record_are_the_whole_record() -> None:
    agent = run(settled(), [*call("k1", T0 + 5 * MIN), state("s1", T0 + 8 * MIN, "logged_out")]).agents["a1"]
    assert AgentRecord.from_parts(agent.states_record(), agent.calls_record()) == agent.record()
    agent = run(settled(), call("k1", T0 + 5 * MIN)).agents["a1"]
    assert AgentRecord.from_parts(agent.states_record(), agent.calls_record()) == agent.record()
    assert AgentRecord.from_parts(agent.record().to_json(), None) == agent.record()  # a whole one


def test_an_agent_counted_in_its_team_without_a_write_is_team_checked() -> None:
    """A wrapup writes neither part but counts in the agent's team: the commit checks that team
    (`Outcome.teams_read`); an agent whose state the batch writes is version-checked instead."""
    wrapup = Event(event_id="k0-w", type="call.wrapup", ts_ms=T0 + 3 * MIN, campaign_id="c1",
                   call_id="k0", agent_id="a1", fields={"wrapup_ms": 5000, "disposition": "sale"})
    read = run(settled(), [wrapup])
    assert read.agent_parts == {} and read.teams_read == {"a1": "t1"}
    assert run(Loaded(), [wrapup]).teams_read == {"a1": None}  # no team yet: checked as none
    assert run(settled(), [wrapup, *call("k1", T0 + 5 * MIN)]).teams_read == {}

"""Entity states encoded in proportion to the change are byte for byte the whole encoding."""

from __future__ import annotations

import random

from stream.contract import Event
from stream.state.agent_state import AgentCall, AgentState, Connect
from stream.state.call_state import CallState
from stream.state.deltas import Deltas
from stream.state.encoding import dumps

MIN = 60_000


def state_event(i: int, ts: int, state: str = "available") -> Event:
    return Event(event_id=f"a-{i}", type="agent.state", ts_ms=ts, campaign_id="c1",
                 call_id=None, agent_id="a1", fields={"state": state})


def call_event(i: int, ts: int, kind: str = "call.dialed") -> Event:
    return Event(event_id=f"e-{i}", type=kind, ts_ms=ts, campaign_id="c1", call_id="k1",
                 agent_id=None, fields={"caller_id": "+1-555-0101"})


def test_agent_state_encoding_follows_appends_late_points_prunes_and_clones() -> None:
    rng = random.Random(7)
    state = AgentState()
    ts = 10 * 3_600_000
    for i in range(400):
        ts += rng.randint(1, 5) * MIN
        late = rng.random() < 0.15 and state.points
        when = ts - rng.randint(1, 90) * MIN if late else ts
        state.add_points("a1", [state_event(i, when, rng.choice(["available", "paused", "on_call"]))],
                         Deltas())
        if rng.random() < 0.3:
            state.calls[f"k{i}"] = AgentCall([Connect(when, "c1")], [when + MIN], "+1", None)
        if rng.random() < 0.1 and state.calls:
            state.calls.pop(rng.choice(list(state.calls)))
        if rng.random() < 0.2:
            state.observe_team(f"t{i % 3}", when, f"a-{i}")
        state.prune(6 * 3_600_000)
        if rng.random() < 0.5:
            state = state.clone()
        assert state.encode() == dumps(state.to_json())
        assert AgentState.from_json(__import__("json").loads(state.encode())).to_json() == state.to_json()


def test_call_state_encoding_follows_appends_and_clones() -> None:
    state = CallState()
    assert state.encode() == dumps(state.to_json())
    for i in range(30):
        kinds = ["call.dialed", "call.answered", "call.ended"]
        state.events.append(call_event(i, 1_000 * i, kinds[i % 3]))
        if i % 4 == 0:
            state = state.clone()
        assert state.encode() == dumps(state.to_json())

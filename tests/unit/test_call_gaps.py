"""Call gaps (docs/kpis.md): from a call's end to the same agent's next `call.connected` within
one login session; for an agent with no `agent.state` at all, gaps over `max_call_gap_ms` are
not counted. The result equals the reference calculator's for every batching, with pruning on,
and in any arrival order within the contract's lateness."""

from __future__ import annotations

import json
import random
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.contract import Event
from stream.kpi.contributions import Thresholds
from stream.state.agent_state import AgentState
from stream.state.batch import Loaded, agents_needed, call_ids, process
from stream.state.call_state import CallState
from tests.reference.calculator import Reference

S, MIN, HOUR = 1000, 60_000, 3_600_000
T0 = 1_763_600_000_000 - 1_763_600_000_000 % MIN
HORIZON_MS = 2 * HOUR
"""The agent-state horizon of these tests: short, so that pruning happens all the time."""
LATENESS_MS = 90 * MIN
"""How late an agent or call-flow event may arrive (within the horizon)."""
FEEDBACK_LATENESS_MS = 30 * HOUR
"""How late a `call.qa` / `call.survey` may arrive: long after the agent's history is pruned."""


class Driver:
    """Runs batches through `process` as the worker does, keeping states between them."""

    def __init__(self) -> None:
        self.calls: dict[str, CallState] = {}
        self.agents: dict[str, AgentState] = {}
        self.gaps: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        self.beyond = 0

    def run(self, batch: list[Event]) -> None:
        calls = {cid: self.calls.get(cid) for cid in call_ids(batch)}
        agents = {a: self.agents.get(a) for a in agents_needed(batch, calls)}
        loaded = Loaded({k: v.clone() if v else None for k, v in calls.items()},
                        {k: v.clone() if v else None for k, v in agents.items()})
        out = process(batch, loaded, Thresholds(), now_ms=T0, agent_state_ms=HORIZON_MS)
        for (scope, _, name), v in out.deltas.items():
            if name == "call_gap_ms":
                self.gaps[scope][0] += v
            elif name == "call_gaps":
                self.gaps[scope][1] += v
        self.calls.update(out.calls)
        self.agents.update(out.agents)
        self.beyond += out.stats["beyond_horizon"]


def reference_gaps(raw: list[bytes]) -> dict[str, list[float]]:
    ref = Reference(raw, now_ms=T0 + 10 * 24 * HOUR)
    out: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for rec in ref.records:
        if "gaps" in rec.values:
            for s in rec.scopes:
                out[s][0] += rec.values["gap_ms"]
                out[s][1] += rec.values["gaps"]
    return out


def run(events: list[dict], cuts: list[int]) -> Driver:
    parsed = [Event.from_dict(e) for e in events]
    driver = Driver()
    start = 0
    for cut in [*sorted(cuts), len(parsed)]:
        if cut > start:
            driver.run(parsed[start:cut])
            start = cut
    return driver


def nonzero(gaps: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    return {s: (round(v[0], 6), v[1]) for s, v in gaps.items()
            if s.split(":")[0] in ("center", "agent", "campaign") and (v[0] or v[1])}


def ev(eid: str, kind: str, t: int, **f: object) -> dict:
    return {"event_id": eid, "type": kind, "ts": t, **f}


def connected(cid: str, t: int, agent: str = "a1") -> dict:
    return ev(f"{cid}-c", "call.connected", t, call_id=cid, campaign_id="c1", agent_id=agent,
              wait_ms=100)


def ended(cid: str, t: int, agent: str = "a1") -> dict:
    return ev(f"{cid}-e", "call.ended", t, call_id=cid, campaign_id="c1", agent_id=agent,
              talk_ms=60_000)


def state(eid: str, t: int, st_: str, agent: str = "a1") -> dict:
    return ev(eid, "agent.state", t, agent_id=agent, state=st_)


# -- the defects, one by one --------------------------------------------------------------------

def test_late_qa_of_a_pruned_call_adds_no_gap() -> None:
    day = [connected("k1", T0), ended("k1", T0 + MIN), connected("k2", T0 + 10 * MIN),
           ended("k2", T0 + 11 * MIN), connected("k3", T0 + 5 * HOUR),
           ended("k3", T0 + 5 * HOUR + MIN)]
    qa = ev("k1-qa", "call.qa", T0 + 6 * HOUR, call_id="k1", campaign_id="c1", agent_id="a1",
            score=90, compliant=True)
    driver = run([*day, qa], [2, 4, 6])
    assert nonzero(driver.gaps) == nonzero(reference_gaps([json.dumps(e).encode() for e in [*day, qa]]))
    assert driver.gaps["agent:a1"][1] == 1  # k1 → k2 only: k2 → k3 (5 h, no sessions) is over the cap


def test_overnight_gap_does_not_depend_on_batching() -> None:
    day1 = [state("in1", T0, "available"), connected("k1", T0 + MIN), ended("k1", T0 + 2 * MIN),
            state("out1", T0 + 8 * HOUR, "logged_out")]
    day2 = [state("in2", T0 + 24 * HOUR, "available"), connected("k2", T0 + 24 * HOUR + MIN),
            ended("k2", T0 + 24 * HOUR + 2 * MIN)]
    together = run([*day1, *day2], [])  # a replay or backfill: one batch
    apart = run([*day1, *day2], [len(day1), len(day1) + 1])  # live: login, then the first call
    assert nonzero(together.gaps) == nonzero(apart.gaps) == {}  # a logout lies between


def test_gap_within_a_session_counts_however_long() -> None:
    """With sessions known, a long gap inside one (no logout) is a gap, pruning or not."""
    events = [state("in1", T0, "available"), connected("k1", T0 + MIN), ended("k1", T0 + 2 * MIN),
              state("p1", T0 + 3 * MIN, "paused"), state("a1", T0 + 4 * HOUR, "available"),
              connected("k2", T0 + 4 * HOUR + MIN), ended("k2", T0 + 4 * HOUR + 2 * MIN)]
    for cuts in ([], [3], [3, 4], [4, 5, 6], [1, 2, 3, 4, 5, 6]):
        got = run(events, cuts).gaps["agent:a1"]
        assert got == [4 * HOUR - MIN, 1], cuts


def test_agent_without_states_counts_gaps_up_to_the_cap() -> None:
    events = [connected("k1", T0), ended("k1", T0 + MIN), connected("k2", T0 + MIN + HOUR),
              ended("k2", T0 + 2 * MIN + HOUR), connected("k3", T0 + 2 * MIN + 2 * HOUR + S)]
    got = run(events, [2]).gaps["agent:a1"]
    assert got == [HOUR, 1]  # exactly the cap counts; a second longer does not


def test_first_agent_state_arriving_late_lifts_the_cap() -> None:
    """The login arrives after the calls of its session: until then the agent had no states
    (gaps capped), from then on its gaps follow sessions, also the ones already counted."""
    login = state("in1", T0, "available")
    calls = [connected("k1", T0 + MIN), ended("k1", T0 + 2 * MIN),
             connected("k2", T0 + 2 * MIN + 90 * MIN), ended("k2", T0 + 3 * MIN + 90 * MIN)]
    for cuts in ([], [4], [2, 4], [1, 2, 3, 4]):
        got = run([*calls, login], cuts).gaps["agent:a1"]
        assert got == [90 * MIN, 1], cuts


# -- any batching, any arrival order within the lateness: equal to the reference -----------------

@st.composite
def streams(draw: st.DrawFn) -> tuple[list[dict], list[int]]:
    """A few agents' days in arrival order (late feedback included), and batch cuts."""
    rnd = random.Random(draw(st.integers(0, 2**32)))
    events: list[tuple[int, dict]] = []
    for a in range(draw(st.integers(1, 3))):
        agent = f"a{a}"
        with_states = draw(st.booleans())
        t = T0 + rnd.randrange(0, HOUR)
        for session in range(draw(st.integers(1, 3))):
            if with_states:
                events.append((t, state(f"{agent}-in{session}", t, "available", agent)))
            for k in range(draw(st.integers(0, 4))):
                t += rnd.choice((rnd.randrange(S, 10 * MIN), rnd.randrange(HOUR // 2, 5 * HOUR)))
                cid = f"{agent}-s{session}-k{k}"
                events.append((t, connected(cid, t, agent)))
                t += rnd.randrange(S, 10 * MIN)
                events.append((t, ended(cid, t, agent)))
                if rnd.random() < 0.5:
                    kind = rnd.choice(("call.qa", "call.survey"))
                    fields = {"agent_id": agent, "score": 80, "compliant": True} \
                        if kind == "call.qa" else {"csat": 4}
                    events.append((t + rnd.randrange(0, FEEDBACK_LATENESS_MS),
                                   ev(f"{cid}-f", kind, t + MIN, call_id=cid, campaign_id="c1",
                                      **fields)))
            t += rnd.randrange(MIN, HOUR)
            if with_states and rnd.random() < 0.7:  # dialers do not always send the logout
                events.append((t, state(f"{agent}-out{session}", t, "logged_out", agent)))
            t += rnd.choice((rnd.randrange(S, 30 * MIN), rnd.randrange(MIN, 20 * HOUR)))
    arrival = sorted(events, key=lambda x: x[0] + (rnd.randrange(0, LATENESS_MS)
                                                    if x[1]["type"] not in ("call.qa", "call.survey")
                                                    else 0))
    ordered = [e for _, e in arrival]
    cuts = draw(st.lists(st.integers(0, len(ordered)), max_size=12))
    return ordered, cuts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_gaps_equal_the_reference_in_any_batching(stream: tuple[list[dict], list[int]]) -> None:
    events, cuts = stream
    driver = run(events, cuts)
    assert driver.beyond == 0
    expected = nonzero(reference_gaps([json.dumps(e).encode() for e in events]))
    assert nonzero(driver.gaps) == expected
    assert nonzero(run(events, []).gaps) == expected  # one batch
    assert nonzero(run(events, list(range(len(events)))).gaps) == expected  # one event each

"""Processing is order-independent and idempotent: any arrival order, any batching, any
duplication of events gives exactly the same counters."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from stream.contract import Event
from stream.kpi.contributions import Thresholds
from stream.state.batch import Loaded, agents_needed, call_ids, process
from stream.state.call_state import CallState

T0 = 1_763_600_000_000 - 1_763_600_000_000 % 60_000
S = 1000
NOW = T0 + 3600 * S


def e(eid: str, kind: str, t: int, **f: object) -> Event:
    return Event.from_dict({"event_id": eid, "type": kind, "ts": T0 + t * S, **f})


def c(eid: str, kind: str, t: int, call: str, **f: object) -> Event:
    return e(eid, kind, t, call_id=call, campaign_id=f.pop("campaign_id", "c1"), **f)


EVENTS = [
    c("x1", "call.dialed", 0, "X", caller_id="D1", list_id="L1"),
    c("x2", "call.answered", 10, "X", answered_by="human", ring_ms=9000),
    c("x3", "call.connected", 11, "X", agent_id="a1", team_id="t1", wait_ms=2500),
    c("x4", "call.ended", 70, "X", agent_id="a1", talk_ms=59000, hold_ms=0),
    c("x5", "call.wrapup", 80, "X", agent_id="a1", wrapup_ms=10000, disposition="sale", order_value=42.5),
    c("x6", "call.survey", 300, "X", csat=4),
    c("y1", "call.dialed", 90, "Y", caller_id="D2"),
    c("y2", "call.answered", 95, "Y", answered_by="human"),
    c("y3", "call.connected", 96, "Y", agent_id="a1", wait_ms=100),
    c("y4", "call.ended", 150, "Y", talk_ms=54000),
    c("z1", "call.dialed", 100, "Z", agent_id="a2", mode="preview", caller_id="D1"),
    c("z2", "call.unanswered", 120, "Z", reason="no_answer"),
    e("s1", "agent.state", -60, agent_id="a1", state="available", team_id="t0", campaign_id="c1"),
    e("s2", "agent.state", 11, agent_id="a1", state="on_call", campaign_id="c1"),
    e("s3", "agent.state", 70, agent_id="a1", state="wrap_up", campaign_id="c1"),
    e("s4", "agent.state", 80, agent_id="a1", state="available", campaign_id="c1"),
    e("s5", "agent.state", 200, agent_id="a1", state="paused", reason="break", team_id="t1"),
    e("s6", "agent.state", 500, agent_id="a1", state="logged_out"),
    e("s7", "agent.state", 0, agent_id="a2", state="available", team_id="t2", campaign_id="c1"),
]


class FakeStore:
    """What Redis does with a batch outcome: sums deltas, stores states, moves team history."""

    def __init__(self) -> None:
        self.counters: defaultdict[tuple[str, int, str], float] = defaultdict(float)
        self.loaded = Loaded()

    def run(self, batch: list[Event]) -> None:
        calls = {cid: self.loaded.calls.get(cid) for cid in call_ids(batch)}
        agents = {a: self.loaded.agents.get(a) for a in agents_needed(batch, calls)}
        out = process(batch, Loaded(calls, agents), Thresholds(), now_ms=NOW, agent_state_ms=10**12)
        for agent, old, new in out.team_moves:
            for (scope, minute, name), v in list(self.counters.items()):
                if scope == f"agent:{agent}":
                    if old:
                        self.counters[(f"team:{old}", minute, name)] -= v
                    self.counters[(f"team:{new}", minute, name)] += v
        for key, v in out.deltas.items():
            self.counters[key] += v
        self.loaded.calls.update(out.calls)
        self.loaded.agents.update(out.agents)

    def totals(self) -> dict[tuple[str, str], float]:
        out: defaultdict[tuple[str, str], float] = defaultdict(float)
        for (scope, _, name), v in self.counters.items():
            out[(scope, name)] += v
        return {k: round(v, 6) for k, v in out.items() if round(v, 6) != 0}

    def bucketed(self) -> dict[tuple[str, int, str], float]:
        return {k: round(v, 6) for k, v in self.counters.items() if round(v, 6) != 0}


def run(events: list[Event], batch_size: int) -> FakeStore:
    store = FakeStore()
    for i in range(0, len(events), batch_size):
        store.run(events[i:i + batch_size])
    return store


def reference() -> FakeStore:
    return run(sorted(EVENTS, key=lambda ev: ev.ts_ms), len(EVENTS))


def test_expected_values() -> None:
    t = reference().totals()
    assert t[("center", "dialed")] == 3
    assert t[("agent:a1", "dialed")] == 2  # X and Y, through their connects
    assert t[("agent:a2", "dialed")] == 1  # preview dial carries the agent
    assert t[("agent:a1", "handled")] == 1  # y4 has no agent_id of its own: not handled
    assert t[("agent:a1", "talk_ms")] == 59000
    assert t[("caller_id:D1", "dialed")] == 2 and t[("list:L1", "answered")] == 1
    assert t[("center", "compliance_abandons")] == 1  # x3 waited 2.5 s
    assert t[("team:t1", "dialed")] == 2 and ("team:t0", "dialed") not in t
    assert t[("agent:a1", "survey" + "s")] == 1
    # a1: available 71 s, on call 59 s, wrap-up 10 s, available 120 s, paused 300 s.
    assert t[("agent:a1", "staffed_ms")] == 560_000
    assert t[("agent:a1", "paused_ms:break")] == 300_000
    assert t[("team:t1", "staffed_ms")] == 560_000
    # gap: x4 ended at 70 s, y3 connected at 96 s.
    assert t[("agent:a1", "call_gap_ms")] == 26_000 and t[("agent:a1", "call_gaps")] == 1
    assert t[("caller_id:D2", "call_gaps")] == 1


@pytest.mark.parametrize("seed", range(40))
def test_any_order_any_batching_any_duplicates(seed: int) -> None:
    rng = random.Random(seed)
    events = EVENTS + rng.sample(EVENTS, 6)
    rng.shuffle(events)
    store = run(events, rng.randint(1, 8))
    assert store.bucketed() == reference().bucketed()


def test_replaying_a_whole_batch_changes_nothing() -> None:
    store = run(EVENTS, 5)
    before = store.bucketed()
    store.run(EVENTS)
    assert store.bucketed() == before


def test_duplicates_are_counted_as_such() -> None:
    state = CallState()
    from stream.state.deltas import Deltas
    d = Deltas()
    fresh = state.apply([EVENTS[0], EVENTS[0], EVENTS[1]], Thresholds(), d)
    assert [x.event_id for x in fresh] == ["x1", "x2"]


def test_live_states() -> None:
    store = run(EVENTS[:2], 10)
    out = process([EVENTS[2]], Loaded({"X": store.loaded.calls["X"]}, {}), Thresholds(),
                  now_ms=NOW, agent_state_ms=10**12)
    live = out.live_calls["X"]
    assert live is not None and live["status"] == "talking"
    out = process([EVENTS[15], EVENTS[12]], Loaded({}, {"a1": None}), Thresholds(), now_ms=NOW,
                  agent_state_ms=10**12)
    agent = out.live_agents["a1"]
    assert agent is not None and agent["state"] == "available" and agent["since"] == T0 + 80 * S


def test_agent_horizon_follows_the_agents_own_event_time() -> None:
    """A backfill of an old day is exact; only an event more than the horizon behind the
    agent's newest event is refused (and counted), never the wall clock's age."""
    old = [e("h1", "agent.state", 0, agent_id="a9", state="available"),
           e("h2", "agent.state", 600, agent_id="a9", state="paused", reason="break"),
           e("h3", "agent.state", 4 * 3600, agent_id="a9", state="available")]
    first = process(old, Loaded({}, {"a9": None}), Thresholds(), now_ms=NOW + 10**10,
                    agent_state_ms=3 * 3600 * S)
    state = first.agents["a9"]
    assert first.stats["beyond_horizon"] == 0 and state.floor == T0 + 600 * S
    late_inside = e("h4", "agent.state", 2 * 3600, agent_id="a9", state="paused", reason="lunch")
    late_outside = e("h5", "agent.state", 300, agent_id="a9", state="paused", reason="meeting")
    out = process([late_inside, late_outside], Loaded({}, {"a9": state}), Thresholds(),
                  now_ms=NOW + 10**10, agent_state_ms=3 * 3600 * S)
    assert out.stats["beyond_horizon"] == 1
    lunch = sum(v for k, v in out.deltas.items() if k[0] == "agent:a9" and "lunch" in k[2])
    assert lunch == 2 * 3600 * S


def test_slowest_partition_holds_the_agent_horizon_back() -> None:
    """A backlog consumed unevenly: calls from a fast partition must not prune the agent
    history that a slow partition's late agent events still need."""
    from stream.processing.horizon import HOLD_ALL_MS, low_watermark
    from stream.store.layout import PartitionProgress as P
    H = 3600_000
    now = 200 * H
    assert low_watermark({}, [], now) is None
    assert low_watermark({"t:0": P(10 * H, False), "t:1": P(3 * H, False)}, [], now) == 3 * H
    # A lagging partition holds however far behind it is (no idle-by-time rule) ...
    assert low_watermark({"t:0": P(100 * H, False), "t:1": P(3 * H, False)}, [], now) == 3 * H
    # ... only a caught-up one stops holding, and a partition never applied holds everything.
    assert low_watermark({"t:0": P(100 * H, False), "t:1": P(3 * H, True)}, [], now) == 100 * H
    assert low_watermark({"t:0": P(100 * H, False)}, ["t:0", "t:1"], now) == HOLD_ALL_MS
    assert low_watermark({"t:0": P(100 * H, True), "t:1": P(None, True)}, ["t:0", "t:1"], now) is None
    old = [e("w1", "agent.state", 0, agent_id="a8", state="available"),
           e("w2", "agent.state", 600, agent_id="a8", state="on_call"),
           e("w3", "agent.state", 9 * 3600, agent_id="a8", state="available")]
    kept = process(old, Loaded({}, {"a8": None}), Thresholds(), now_ms=NOW, agent_state_ms=3600 * S,
                   watermark_ms=T0 + 700 * S).agents["a8"]
    assert kept.floor is None or kept.floor <= T0 + 600 * S
    late = e("w4", "agent.state", 300, agent_id="a8", state="paused", reason="break")
    out = process([late], Loaded({}, {"a8": kept}), Thresholds(), now_ms=NOW, agent_state_ms=3600 * S)
    assert out.stats["beyond_horizon"] == 0


def test_the_heartbeat_reports_the_lag_of_every_assigned_partition_also_when_idle() -> None:
    """`_assigned_lag` reads the offsets `fetch.py` records (`Consumer._read_offset`, guarded by
    tests/test_upstream.py); it read `_last_offset`, which this Faust lacks, and reported none."""
    from collections import defaultdict
    from types import SimpleNamespace

    from faust.types import TP

    from stream.processing.app import _assigned_lag
    busy, idle, unread = TP("dialer.events", 0), TP("dialer.events", 1), TP("dialer.events", 2)
    read: defaultdict[TP, int | None] = defaultdict(lambda: None, {busy: 41, idle: 9})
    consumer = SimpleNamespace(assignment=lambda: {busy, idle, unread},
                               highwater={busy: 50, idle: 10, unread: None}.get, _read_offset=read)
    lag = _assigned_lag(SimpleNamespace(consumer=consumer))  # type: ignore[arg-type]
    assert lag == {"lag:dialer.events:0": 8, "lag:dialer.events:1": 0}

"""Contract 1.1 inbound calls and 1.1 breakdowns through the pure batch step: a call with a
`call.offered` is inbound whatever order its events arrive in, and never counts as an outbound
dial, attempt, human answer, abandon or compliance abandon (docs/kpis.md)."""

from __future__ import annotations

import random

import pytest

from stream.kpi.catalog import compute_all
from tests.unit.test_processing import FakeStore, c, e

EVENTS = [
    # inbound, answered within the service level, a sale with the dialer's own code
    c("i1o", "call.offered", 0, "I1", campaign_id="q1", queue_id="sales-in"),
    c("i1a", "call.answered", 1, "I1", campaign_id="q1", answered_by="human"),
    c("i1c", "call.connected", 15, "I1", campaign_id="q1", agent_id="a3", team_id="t3", wait_ms=15000),
    c("i1e", "call.ended", 75, "I1", campaign_id="q1", agent_id="a3", talk_ms=60000),
    c("i1w", "call.wrapup", 85, "I1", campaign_id="q1", agent_id="a3", wrapup_ms=10000,
      disposition="sale", disposition_code="SALE", order_value=10.0),
    # inbound, abandoned in the queue
    c("i2o", "call.offered", 30, "I2", campaign_id="q1"),
    c("i2x", "call.abandoned", 70, "I2", campaign_id="q1", wait_ms=40000, reason="customer_hangup"),
    # inbound, answered after the service level, slow connect (no compliance abandon)
    c("i3o", "call.offered", 40, "I3", campaign_id="q1"),
    c("i3c", "call.connected", 70, "I3", campaign_id="q1", agent_id="a3", wait_ms=30000),
    c("i3e", "call.ended", 100, "I3", campaign_id="q1", agent_id="a3", talk_ms=20000),
    c("i3w", "call.wrapup", 110, "I3", campaign_id="q1", agent_id="a3", wrapup_ms=5000,
      disposition="not_interested", disposition_code="NI"),
    # outbound: an abandon that counts, and a wrap-up with a code
    c("o1d", "call.dialed", 0, "O1", caller_id="D1", list_id="L1"),
    c("o1a", "call.answered", 10, "O1", answered_by="human"),
    c("o1x", "call.abandoned", 13, "O1", wait_ms=3000, reason="no_agent"),
    c("o2d", "call.dialed", 20, "O2"),
    c("o2a", "call.answered", 25, "O2", answered_by="human"),
    c("o2c", "call.connected", 26, "O2", agent_id="a3", wait_ms=1000),
    c("o2e", "call.ended", 60, "O2", agent_id="a3", talk_ms=34000),
    c("o2w", "call.wrapup", 62, "O2", agent_id="a3", wrapup_ms=2000, disposition="not_interested",
      disposition_code="NI"),
    e("s1", "agent.state", -10, agent_id="a3", state="available", team_id="t3"),
]

EXPECTED_CENTER = {
    "dialed": 2, "attempts_completed": 2, "answered": 2, "connected": 2, "abandoned": 1,
    "compliance_abandons": 1, "agent_connected": 3, "handled": 3, "wrapups": 3,
    "offered": 3, "inbound_answered": 2, "inbound_abandoned": 1,
    "inbound_abandon_rate": 1 / 3, "service_level": 1 / 3, "avg_speed_of_answer_seconds": 22.5,
    "abandon_rate": 0.5, "conversion_rate": 1 / 5, "conversation_rate": 2 / 5,
    "completion_rate": 1 / 5, "refusal_rate": 0.0, "avg_answer_to_agent_seconds": 46 / 3,
    "aht_seconds": (60 + 10 + 20 + 5 + 34 + 2) / 3, "wrapups_by_code": {"NI": 2, "SALE": 1},
}


def kpis(store: FakeStore, scope: str) -> dict:
    return compute_all({name: v for (s, name), v in store.totals().items() if s == scope})


def run(batches: list[list]) -> FakeStore:
    store = FakeStore()
    for b in batches:
        store.run(b)
    return store


def test_inbound_calls_count_as_inbound() -> None:
    got = kpis(run([EVENTS]), "center")
    for name, value in EXPECTED_CENTER.items():
        assert got[name] == (pytest.approx(value) if isinstance(value, float) else value), name
    assert kpis(run([EVENTS]), "campaign:q1")["connected"] == 0
    assert run([EVENTS]).totals()[("center", "inbound_agent_connected")] == 2  # kept out of the UK rate


def test_an_abandon_before_its_offer_is_corrected_retroactively() -> None:
    i2 = [ev for ev in EVENTS if ev.call_id == "I2"]
    i3 = [ev for ev in EVENTS if ev.call_id == "I3"]
    store = run([[i2[1]], [i3[1]], [i3[2], i3[0]], [i2[0]]])
    got = kpis(store, "center")
    assert got["abandoned"] == 0 and got["compliance_abandons"] == 0
    assert got["inbound_abandoned"] == 1 and got["offered"] == 2 and got["inbound_answered"] == 1
    assert got["avg_speed_of_answer_seconds"] == pytest.approx(30.0)


@pytest.mark.parametrize("seed", range(12))
def test_any_order_and_batching_gives_the_same_totals(seed: int) -> None:
    rng = random.Random(seed)
    events = list(EVENTS)
    rng.shuffle(events)
    cuts = sorted(rng.sample(range(1, len(events)), rng.randint(1, 6)))
    parts = [events[i:j] for i, j in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    assert run(parts).totals() == run([EVENTS]).totals()


def test_disposition_codes_are_a_breakdown_per_scope() -> None:
    store = run([EVENTS])
    assert kpis(store, "agent:a3")["wrapups_by_code"] == {"NI": 2, "SALE": 1}
    assert kpis(store, "campaign:c1")["wrapups_by_code"] == {"NI": 1}
    assert kpis(store, "team:t3")["wrapups_by_code"] == {"NI": 2, "SALE": 1}


def test_the_batch_step_equals_the_reference_calculator_on_inbound_calls() -> None:
    """The independent oracle (tests/reference) and the pipeline's pure step agree on every KPI
    of every scope, for the 1.1 scenario delivered in any order and batching."""
    import json

    from stream.contract import Event, validate
    from tests.reference.calculator import Reference
    from tests.reference.test_calculator import HOUR, inbound_scenario
    from tests.reference.test_calculator import NOW as REF_NOW

    raws = [json.dumps(d).encode() for d in inbound_scenario()]
    ref = Reference(raws, now_ms=REF_NOW)
    events = [validate(r, now_ms=REF_NOW, max_age_ms=10**12) for r in raws]
    assert all(isinstance(ev, Event) for ev in events)
    rng = random.Random(5)
    for _ in range(5):
        rng.shuffle(events)
        store = run([events[:7], events[7:12], events[12:]])
        for scope in ref.scopes():
            want = ref.kpis(scope, *HOUR, now_ms=REF_NOW)
            got = kpis(store, scope)
            for name, value in want.items():
                if name == "avg_call_gap_seconds":
                    continue  # call gaps: tests/unit/test_processing.py and the agent-state tests
                assert got[name] == (pytest.approx(value) if isinstance(value, float) else value), (scope, name)


def test_the_cli_table_shows_wrapups_by_code_as_counts() -> None:
    from stream.cli.commands import format_table
    text = format_table({"scope": "center", "from": "a", "to": "b", "kpis": {
        "wrapups_by_code": {"NI": 2, "SALE": 1}, "paused_seconds_by_reason": {"break": 300.0}}})
    assert "NI 2, SALE 1" in text and "break 300s" in text


def test_a_variant_is_attributed_to_every_event_of_its_call_retroactively() -> None:
    """issue 12 item 4: `variant` on call.dialed makes the scope `variant:<id>`, like `list:`."""
    call = [
        c("v2", "call.answered", 10, "V", answered_by="human"),
        c("v3", "call.connected", 11, "V", agent_id="a5", wait_ms=500),
        c("v4", "call.ended", 70, "V", agent_id="a5", talk_ms=59000),
        c("v5", "call.wrapup", 80, "V", agent_id="a5", wrapup_ms=5000, disposition="sale"),
        c("v1", "call.dialed", 0, "V", variant="script-B", list_id="L9"),  # arrives last
    ]
    late = run([call[:2], call[2:4], call[4:]])
    assert late.totals() == run([call]).totals()
    got = kpis(late, "variant:script-B")
    assert (got["dialed"], got["connected"], got["handled"], got["conversions"]) == (1, 1, 1, 1)
    assert got["conversion_rate"] == 1.0
    assert kpis(late, "variant:script-B") == kpis(late, "list:L9")


def test_an_offered_call_waits_in_its_queue_on_the_live_view() -> None:
    from stream.kpi.contributions import Thresholds
    from stream.state.batch import Loaded, process
    from tests.unit.test_processing import NOW
    offered = [ev for ev in EVENTS if ev.event_id == "i2o"]
    out = process(offered, Loaded(), Thresholds(), now_ms=NOW, agent_state_ms=10**12)
    waiting = out.live_calls["I2"]
    assert waiting is not None and waiting["status"] == "waiting"
    connected = [ev for ev in EVENTS if ev.event_id in ("i1o", "i1c")]
    out = process(connected, Loaded(), Thresholds(), now_ms=NOW, agent_state_ms=10**12)
    talking = out.live_calls["I1"]
    assert talking is not None and talking["status"] == "talking"

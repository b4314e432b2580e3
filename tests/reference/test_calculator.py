"""Hand-computed checks of the reference calculator (the oracle must itself be right)."""
from __future__ import annotations

import json
from itertools import count

import pytest

from tests.reference.calculator import COUNT_KEYS, Reference, RefConfig, validate, Invalid

T0 = 1_763_600_000_000  # 2025-11-20T00:53:20Z
S = 1000
NOW = T0 + 2000 * S
_ids = count()


def ev(type_: str, at_s: float, **fields) -> dict:
    e = {"event_id": fields.pop("event_id", f"e{next(_ids):05d}"), "type": type_,
         "ts": T0 + int(at_s * S), **fields}
    return e


def call(type_: str, at_s: float, call_id: str, campaign: str = "K1", **fields) -> dict:
    return ev(type_, at_s, call_id=call_id, campaign_id=campaign, **fields)


def raw(events) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


def scenario() -> list[dict]:
    return [
        # c1: a sale by A1
        call("call.dialed", 0, "c1", caller_id="D1", list_id="L1", lead_id="p1", mode="predictive"),
        call("call.answered", 5, "c1", answered_by="human", ring_ms=5000),
        call("call.connected", 6, "c1", agent_id="A1", team_id="T1", wait_ms=1500),
        call("call.ended", 76, "c1", agent_id="A1", talk_ms=60000, hold_ms=10000, hangup_by="customer"),
        call("call.quality", 76, "c1", mos=4.0, dropped=False),
        call("call.wrapup", 96, "c1", agent_id="A1", wrapup_ms=20000, disposition="sale",
             order_value=100, lead_score=80, intent="high", resolved=True),
        call("call.survey", 120, "c1", agent_id="A1", csat=5),
        call("call.complaint", 130, "c1"),
        call("call.qa", 1000, "c1", agent_id="A1", score=90, compliant=True),
        # c2: no answer, later a callback
        call("call.dialed", 1, "c2", caller_id="D1", list_id="L1"),
        call("call.unanswered", 26, "c2", reason="no_answer", ring_ms=25000),
        call("call.callback", 500, "c2", lead_id="p2"),
        # c3: human answered, dropped for lack of an agent
        call("call.dialed", 2, "c3", caller_id="D2", list_id="L2"),
        call("call.answered", 5, "c3", answered_by="human", ring_ms=3000),
        call("call.abandoned", 7.5, "c3", wait_ms=2500, reason="no_agent"),
        # c4: machine, campaign K2
        call("call.dialed", 3, "c4", campaign="K2", caller_id="D2", list_id="L1"),
        call("call.answered", 7, "c4", campaign="K2", answered_by="machine", ring_ms=4000),
        # c5: a short call of A1 with a slow bridge
        call("call.dialed", 190, "c5", caller_id="D1", list_id="L2"),
        call("call.answered", 197, "c5", answered_by="human", ring_ms=7000),
        call("call.connected", 200, "c5", agent_id="A1", team_id="T1", wait_ms=3000),
        call("call.ended", 220, "c5", agent_id="A1", talk_ms=20000),
        call("call.quality", 220, "c5", dropped=True),
        call("call.wrapup", 230, "c5", agent_id="A1", wrapup_ms=10000,
             disposition="callback_requested", lead_score=50, intent="low"),
        call("call.survey", 240, "c5", csat=3),
        call("call.qa", 1100, "c5", agent_id="A1", score=60, compliant=False),
        # A1's agent time: available, on_call, wrap_up, available, paused (open)
        ev("agent.state", 0, agent_id="A1", state="available", team_id="T1", campaign_id="K1"),
        ev("agent.state", 6, agent_id="A1", state="on_call", team_id="T1", campaign_id="K1"),
        ev("agent.state", 76, agent_id="A1", state="wrap_up", team_id="T1", campaign_id="K1"),
        ev("agent.state", 96, agent_id="A1", state="available", team_id="T1", campaign_id="K1"),
        ev("agent.state", 300, agent_id="A1", state="paused", reason="break", team_id="T1",
           campaign_id="K1"),
    ]


HOUR = (T0, T0 + 3600 * S)


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference(raw(scenario()), now_ms=NOW)


def test_center_counts(ref):
    k = ref.kpis("center", *HOUR, now_ms=NOW)
    expected = dict(
        dialed=5, attempts_completed=5, answered=4, connected=3, machine_answered=1,
        agent_connected=2, abandoned=1, handled=2, conversations=1, conversions=1,
        goals_completed=1, qualified_leads=1, intent_high=1, intent_medium=0, intent_low=1,
        refusals=0, dnc_requests=0, callbacks=2, orders=1, revenue=100.0, surveys=2, csat_sum=8,
        csat_satisfied=1, complaints=1, qa_reviews=2, qa_compliant=1, qa_score_sum=150.0,
        quality_reports=2, mos_sum=4.0, network_drops=1, resolved=1, wrapups=2,
        compliance_abandons=2, offered=0, inbound_answered=0, inbound_abandoned=0,
    )
    assert {key: k[key] for key in COUNT_KEYS} == expected


def test_center_durations_and_rates(ref):
    k = ref.kpis("center", *HOUR, now_ms=NOW)
    assert k["avg_talk_seconds"] == 40.0
    assert k["aht_seconds"] == 60.0  # (60+10+20 + 20+0+10) / 2
    assert k["avg_wrapup_seconds"] == 15.0
    assert k["avg_call_gap_seconds"] == 124.0  # c5 connected at 200, c1 ended at 76
    assert k["avg_answer_to_agent_seconds"] == 2.25
    assert k["avg_ring_seconds"] == pytest.approx(8.8)  # (5+25+3+4+7)/5
    assert k["connect_rate"] == pytest.approx(3 / 5)
    assert k["answer_rate"] == pytest.approx(4 / 5)
    assert k["machine_rate"] == pytest.approx(1 / 4)
    assert k["abandon_rate"] == pytest.approx(1 / 3)
    assert k["conversation_rate"] == pytest.approx(1 / 3)
    assert k["conversion_rate"] == pytest.approx(1 / 3)
    assert k["completion_rate"] == pytest.approx(1 / 5)
    assert k["lead_rate"] == pytest.approx(1 / 3)
    assert k["sales_conversion_rate"] == 1.0
    assert k["refusal_rate"] == 0.0
    assert k["callback_rate"] == pytest.approx(2 / 3)
    assert k["complaint_rate"] == pytest.approx(1 / 3)
    assert k["csat_avg"] == 4.0
    assert k["csat_satisfied_rate"] == 0.5
    assert k["resolution_rate"] == 0.5
    assert k["qa_compliance_rate"] == 0.5
    assert k["avg_mos"] == 2.0  # literal catalog: mos_sum / quality_reports (one has no mos)
    assert k["network_drop_rate"] == 0.5
    assert k["avg_order_value"] == 100.0
    assert k["avg_lead_score"] == 65.0


def test_agent_time_with_open_interval(ref):
    k = ref.kpis("agent:A1", *HOUR, now_ms=NOW)
    assert k["available_seconds"] == 210.0  # 0..6 and 96..300
    assert k["on_call_seconds"] == 70.0
    assert k["wrap_up_seconds"] == 20.0
    assert k["paused_seconds"] == 1700.0  # 300..now (open)
    assert k["paused_seconds_by_reason"] == {"break": 1700.0}
    assert k["staffed_seconds"] == 2000.0
    assert k["productive_seconds"] == 300.0
    assert k["occupancy"] == pytest.approx(0.3)
    assert k["calls_per_agent_hour"] == pytest.approx(3.6)
    assert k["calls_per_productive_hour"] == pytest.approx(24.0)
    # The open interval grows with the query time, the closed ones do not.
    later = ref.kpis("agent:A1", *HOUR, now_ms=NOW + 100 * S)
    assert later["paused_seconds"] == 1800.0
    # The same time counts for the team, the campaign of the opening points, and the center.
    for scope in ("team:T1", "campaign:K1", "center"):
        assert ref.kpis(scope, *HOUR, now_ms=NOW)["staffed_seconds"] == 2000.0
    assert ref.kpis("campaign:K2", *HOUR, now_ms=NOW)["staffed_seconds"] == 0


def test_agent_time_clipping(ref):
    k = ref.kpis("agent:A1", T0 + 50 * S, T0 + 100 * S, now_ms=NOW)
    assert (k["on_call_seconds"], k["wrap_up_seconds"], k["available_seconds"]) == (26.0, 20.0, 4.0)
    assert k["paused_seconds"] == 0
    # now inside the window clips the open interval; a window beyond now has no time at all
    k = ref.kpis("agent:A1", T0 + 250 * S, T0 + 3600 * S, now_ms=T0 + 400 * S)
    assert (k["available_seconds"], k["paused_seconds"]) == (50.0, 100.0)
    assert ref.kpis("agent:A1", NOW + 10 * S, NOW + 20 * S, now_ms=NOW)["staffed_seconds"] == 0


def test_agent_scope_counts_the_calls_it_reached(ref):
    k = ref.kpis("agent:A1", *HOUR, now_ms=NOW)
    # dialed/answered of predictive calls count only for the agent who got them
    assert (k["dialed"], k["connected"], k["agent_connected"], k["handled"]) == (2, 2, 2, 2)
    assert (k["abandoned"], k["machine_answered"], k["surveys"], k["complaints"]) == (0, 0, 2, 1)
    assert k["avg_call_gap_seconds"] == 124.0
    assert ref.kpis("team:T1", *HOUR, now_ms=NOW)["dialed"] == 2


def test_caller_id_list_and_campaign_scopes(ref):
    d1 = ref.kpis("caller_id:D1", *HOUR, now_ms=NOW)
    assert (d1["dialed"], d1["connected"], d1["attempts_completed"], d1["callbacks"]) == (3, 2, 3, 2)
    assert d1["staffed_seconds"] == 0 and d1["occupancy"] is None
    assert d1["calls_per_agent_hour"] is None and d1["paused_seconds_by_reason"] == {}
    d2 = ref.kpis("caller_id:D2", *HOUR, now_ms=NOW)
    assert (d2["dialed"], d2["abandoned"], d2["machine_answered"]) == (2, 1, 1)
    l1 = ref.kpis("list:L1", *HOUR, now_ms=NOW)
    assert (l1["dialed"], l1["orders"], l1["callbacks"]) == (3, 1, 1)
    k2 = ref.kpis("campaign:K2", *HOUR, now_ms=NOW)
    assert (k2["dialed"], k2["connected"], k2["connect_rate"], k2["abandon_rate"]) == (1, 0, 0.0, None)
    assert ref.scopes() == sorted([
        "center", "campaign:K1", "campaign:K2", "agent:A1", "team:T1", "caller_id:D1",
        "caller_id:D2", "list:L1", "list:L2"])


def test_window_boundaries(ref):
    # [from, to): the event at exactly `to` is out, the one at `from` is in
    assert ref.kpis("center", T0, T0 + 1 * S, now_ms=NOW)["dialed"] == 1
    assert ref.kpis("center", T0 + 1 * S, T0 + 3 * S, now_ms=NOW)["dialed"] == 2
    assert ref.kpis("center", T0 + 1000 * S, T0 + 1100 * S, now_ms=NOW)["qa_reviews"] == 1
    empty = ref.kpis("center", T0 - 10 * S, T0, now_ms=NOW)
    assert empty["dialed"] == 0 and empty["aht_seconds"] is None and empty["connect_rate"] is None


def test_retroactive_attribution_is_order_independent():
    events = [
        call("call.ended", 80, "r1", talk_ms=50000),  # no agent_id of its own
        call("call.answered", 10, "r1", answered_by="human"),
        call("call.connected", 11, "r1", agent_id="B", team_id="TB", wait_ms=500),
        call("call.dialed", 0, "r1", caller_id="DX", list_id="LX"),
    ]
    for order in (events, list(reversed(events))):
        ref = Reference(raw(order), now_ms=NOW)
        b = ref.kpis("agent:B", *HOUR, now_ms=NOW)
        assert (b["dialed"], b["connected"], b["agent_connected"]) == (1, 1, 1)
        # the ended event is attributed to B but is not "handled" (it carries no agent_id)
        assert b["handled"] == 0 and b["avg_talk_seconds"] is None
        dx = ref.kpis("caller_id:DX", *HOUR, now_ms=NOW)
        assert (dx["dialed"], dx["connected"], dx["agent_connected"]) == (1, 1, 1)
        assert ref.kpis("list:LX", *HOUR, now_ms=NOW)["attempts_completed"] == 1
        assert ref.kpis("team:TB", *HOUR, now_ms=NOW)["dialed"] == 1


def test_preview_agent_from_dialed_and_earliest_connected_wins():
    events = [
        # preview call: the agent is known at dial time, nobody answers
        call("call.dialed", 0, "p1", agent_id="P", mode="preview"),
        call("call.unanswered", 20, "p1", reason="busy"),
        # two connects: the earliest (ts, then event_id) names the call's agent
        call("call.dialed", 0, "m1", caller_id="D9"),
        call("call.connected", 12, "m1", agent_id="Y", wait_ms=100, event_id="z2"),
        call("call.connected", 12, "m1", agent_id="X", wait_ms=100, event_id="z1"),
        call("call.connected", 10.5, "m1", agent_id="W", wait_ms=100, event_id="z9"),
        # the second call.dialed of m1 (later) does not change caller_id
        call("call.dialed", 5, "m1", caller_id="D8"),
    ]
    ref = Reference(raw(events), now_ms=NOW)
    p = ref.kpis("agent:P", *HOUR, now_ms=NOW)
    assert (p["dialed"], p["attempts_completed"], p["connect_rate"]) == (1, 1, 0.0)
    # connected events count for their own agent; the dialed ones for the call's agent W
    assert ref.kpis("agent:W", *HOUR, now_ms=NOW)["dialed"] == 2
    assert ref.kpis("agent:X", *HOUR, now_ms=NOW)["agent_connected"] == 1
    assert ref.kpis("agent:X", *HOUR, now_ms=NOW)["dialed"] == 0
    assert ref.kpis("caller_id:D9", *HOUR, now_ms=NOW)["dialed"] == 2
    assert "caller_id:D8" not in ref.scopes()


def test_dedupe_first_arrival_wins():
    first = call("call.dialed", 0, "d1", event_id="same", campaign="K1")
    second = call("call.dialed", 0, "d2", event_id="same", campaign="K2")
    msgs = raw([first, second, first])
    ref = Reference(msgs, now_ms=NOW)
    assert ref.kpis("center", *HOUR, now_ms=NOW)["dialed"] == 1
    assert ref.kpis("campaign:K1", *HOUR, now_ms=NOW)["dialed"] == 1
    assert ref.kpis("campaign:K2", *HOUR, now_ms=NOW)["dialed"] == 0
    assert ref.duplicates == 2
    # a rejected copy does not claim the event_id
    bad = dict(first, ts="not a time")
    ref = Reference(raw([bad, second]), now_ms=NOW)
    assert ref.kpis("campaign:K2", *HOUR, now_ms=NOW)["dialed"] == 1


def test_team_change_moves_all_history():
    events = [
        ev("agent.state", 0, agent_id="A", state="available", team_id="T1"),
        call("call.connected", 5, "t1", agent_id="A", team_id="T1", wait_ms=0),
        call("call.ended", 65, "t1", agent_id="A", talk_ms=60000),
        # later evidence of another team, on a call.connected
        call("call.connected", 100, "t2", agent_id="A", team_id="T2", wait_ms=0),
    ]
    ref = Reference(raw(events), now_ms=T0 + 200 * S)
    t2 = ref.kpis("team:T2", *HOUR, now_ms=T0 + 200 * S)
    assert (t2["agent_connected"], t2["handled"], t2["staffed_seconds"]) == (2, 1, 200.0)
    assert t2["avg_call_gap_seconds"] == 35.0  # 100 - 65
    assert "team:T1" not in ref.scopes()
    # equal ts: the greatest event_id decides
    events = [
        ev("agent.state", 0, agent_id="A", state="available", team_id="Ta", event_id="b"),
        ev("agent.state", 0, agent_id="A", state="available", team_id="Tb", event_id="a"),
    ]
    assert "team:Ta" in Reference(raw(events), now_ms=NOW).scopes()


def test_config_thresholds_and_dispositions():
    events = [
        call("call.ended", 1, "x", agent_id="A", talk_ms=10000),
        call("call.connected", 0, "x", agent_id="A", wait_ms=1500),
        call("call.wrapup", 2, "x", agent_id="A", wrapup_ms=0, disposition="qualified_lead"),
        call("call.wrapup", 2, "y", agent_id="A", wrapup_ms=0, disposition="dnc", lead_score=70),
    ]
    ref = Reference(raw(events), now_ms=NOW)
    k = ref.kpis("center", *HOUR, now_ms=NOW)
    assert (k["conversations"], k["conversions"], k["goals_completed"]) == (0, 0, 1)
    assert (k["qualified_leads"], k["refusals"], k["dnc_requests"]) == (2, 1, 1)
    assert k["compliance_abandons"] == 0
    cfg = RefConfig(conversation_threshold_ms=5000, success_dispositions=("qualified_lead",),
                    goal_dispositions=("dnc",), qualification_score=71, connect_threshold_ms=1000)
    k = Reference(raw(events), now_ms=NOW, config=cfg).kpis("center", *HOUR, now_ms=NOW)
    assert (k["conversations"], k["conversions"], k["goals_completed"]) == (1, 1, 1)
    assert (k["qualified_leads"], k["compliance_abandons"]) == (1, 1)


def test_gap_ignores_own_call_and_later_ends():
    events = [
        call("call.connected", 0, "g1", agent_id="A", wait_ms=0),
        call("call.ended", 50, "g1", agent_id="A", talk_ms=50000),
        call("call.ended", 200, "g2", agent_id="A", talk_ms=1000),  # after the connect below
        call("call.connected", 80, "g3", agent_id="A", wait_ms=0),
        call("call.connected", 60, "g1", agent_id="A", wait_ms=0),  # same call: no gap from g1
    ]
    k = Reference(raw(events), now_ms=NOW).kpis("agent:A", *HOUR, now_ms=NOW)
    assert k["avg_call_gap_seconds"] == 30.0  # only g3: 80 - 50
    gap_bucket = Reference(raw(events), now_ms=NOW).kpis("center", T0 + 80 * S, T0 + 81 * S, now_ms=NOW)
    assert gap_bucket["avg_call_gap_seconds"] == 30.0


def test_paused_without_reason_and_logged_out():
    events = [
        ev("agent.state", 0, agent_id="A", state="paused"),
        ev("agent.state", 10, agent_id="A", state="paused", reason=" lunch "),
        ev("agent.state", 30, agent_id="A", state="logged_out"),
    ]
    k = Reference(raw(events), now_ms=NOW).kpis("agent:A", *HOUR, now_ms=NOW)
    assert k["paused_seconds_by_reason"] == {"unspecified": 10.0, "lunch": 20.0}
    assert k["staffed_seconds"] == 30.0 and k["productive_seconds"] == 0 and k["occupancy"] is None


def _base():
    return call("call.wrapup", 0, "v1", agent_id="A", wrapup_ms=1000, disposition="sale")


@pytest.mark.parametrize("mutate, reason", [
    (lambda e: json.dumps(dict(e, pad="x" * 70000)).encode(), "oversize"),
    (lambda e: json.dumps(e).encode()[:-3], "malformed_json"),
    (lambda e: b"\xff\xfe", "malformed_json"),
    (lambda e: json.dumps([e]).encode(), "not_an_object"),
    (lambda e: json.dumps({k: v for k, v in e.items() if k != "call_id"}).encode(), "missing_field"),
    (lambda e: json.dumps({k: v for k, v in e.items() if k != "wrapup_ms"}).encode(), "missing_field"),
    (lambda e: json.dumps(dict(e, campaign_id="  ")).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, wrapup_ms="long")).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, wrapup_ms=1.5)).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, resolved="yes")).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, ts="yesterday")).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, ts="2025-11-20T00:53:20")).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, intent="maybe")).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, disposition=" ")).encode(), "invalid_field"),  # empty required
    (lambda e: json.dumps(dict(e, ts="2025-11-20 00:53:20Z")).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, ts="2025-11-20T00:53:20+0000")).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, wrapup_ms=-0.5)).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, v="1")).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, event_id="x" * 129)).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, type="call.survey", csat=4.5)).encode(), "out_of_range"),
    (lambda e: json.dumps(dict(e, type="call.survey", csat="5")).encode(), "invalid_field"),
    (lambda e: json.dumps(dict(e, wrapup_ms=2**53)).encode(), "out_of_range"),
    (lambda e: json.dumps(dict(e, wrapup_ms=7 * 86400 * S + 1)).encode(), "out_of_range"),
    (lambda e: json.dumps(dict(e, order_value=1e9 + 1)).encode(), "out_of_range"),
    (lambda e: json.dumps({k: v for k, v in e.items() if k != "event_id"}).encode(), "missing_field"),
    (lambda e: json.dumps(dict(e, type="call.transferred")).encode(), "unknown_type"),
    (lambda e: json.dumps(dict(e, disposition="maybe_later")).encode(), "unknown_disposition"),
    (lambda e: json.dumps(dict(e, lead_score=150)).encode(), "out_of_range"),
    (lambda e: json.dumps(dict(e, wrapup_ms=-5)).encode(), "out_of_range"),
    (lambda e: json.dumps(dict(e, ts=NOW + 11 * 60 * S)).encode(), "future_timestamp"),
    (lambda e: json.dumps(dict(e, ts=NOW - 401 * 86400 * S)).encode(), "too_old"),
    (lambda e: json.dumps(dict(e, v=2)).encode(), "unsupported_version"),
])
def test_rejections(mutate, reason):
    ref = Reference([mutate(_base())], now_ms=NOW)
    assert dict(ref.rejected) == {reason: 1}
    assert ref.kpis("center", *HOUR, now_ms=NOW)["wrapups"] == 0


def test_accepted_forms():
    e = _base()
    for variant in (dict(e, ts="2025-11-20T08:53:20.000+08:00"), dict(e, wrapup_ms=1000.0),
                    dict(e, ts="2025-11-20t00:53:20.0009z"), dict(e, ts=float(T0)), dict(e, v=1.0),
                    dict(e, v=1, extra={"ignored": True}), dict(e, agent_id="  A  "),
                    dict(e, order_value=None), dict(e, intent=" "), dict(e, intent="")):
        out = validate(json.dumps(variant).encode(), NOW)
        assert out["ts"] == T0 and out["wrapup_ms"] == 1000 and out["agent_id"] == "A"
    assert validate(json.dumps(dict(e, ts=T0 + 5)).encode(), NOW)["ts"] == T0 + 5
    with pytest.raises(Invalid):
        validate(json.dumps(dict(e, csat=True, type="call.survey")).encode(), NOW)


# --- contract 1.1: inbound calls, disposition codes, variants ------------------------------------

def inbound_scenario() -> list[dict]:
    return [
        # i1: inbound, answered within the service level (15 s), a sale with the dialer's code
        call("call.offered", 0, "i1", campaign="Q1", queue_id="sales-in"),
        call("call.answered", 1, "i1", campaign="Q1", answered_by="human"),
        call("call.connected", 15, "i1", campaign="Q1", agent_id="A3", team_id="T3", wait_ms=15000),
        call("call.ended", 75, "i1", campaign="Q1", agent_id="A3", talk_ms=60000),
        call("call.wrapup", 85, "i1", campaign="Q1", agent_id="A3", wrapup_ms=10000,
             disposition="sale", disposition_code="SALE", order_value=10),
        # i2: inbound, abandoned in the queue: the abandon arrives before the offer
        call("call.abandoned", 70, "i2", campaign="Q1", wait_ms=40000, reason="customer_hangup"),
        call("call.offered", 30, "i2", campaign="Q1"),
        # i3: inbound, answered after 30 s (outside the service level, no compliance abandon)
        call("call.connected", 70, "i3", campaign="Q1", agent_id="A3", wait_ms=30000),
        call("call.offered", 40, "i3", campaign="Q1"),
        call("call.ended", 100, "i3", campaign="Q1", agent_id="A3", talk_ms=20000),
        call("call.wrapup", 110, "i3", campaign="Q1", agent_id="A3", wrapup_ms=5000,
             disposition="not_interested", disposition_code=" NI "),
        # o1: outbound abandon; o2: outbound, variant B, a wrap-up with a code
        call("call.dialed", 0, "o1", variant="A", list_id="L1"),
        call("call.answered", 10, "o1", answered_by="human"),
        call("call.abandoned", 13, "o1", wait_ms=3000, reason="no_agent"),
        call("call.answered", 25, "o2", answered_by="human"),
        call("call.connected", 26, "o2", agent_id="A3", wait_ms=1000),
        call("call.ended", 60, "o2", agent_id="A3", talk_ms=34000),
        call("call.wrapup", 62, "o2", agent_id="A3", wrapup_ms=2000, disposition="not_interested",
             disposition_code="NI"),
        call("call.dialed", 20, "o2", variant="B", list_id="L1"),  # late: attributed retroactively
    ]


def test_inbound_calls():
    k = Reference(raw(inbound_scenario()), now_ms=NOW).kpis("center", *HOUR, now_ms=NOW)
    assert (k["dialed"], k["attempts_completed"], k["answered"], k["connected"]) == (2, 2, 2, 2)
    assert (k["abandoned"], k["compliance_abandons"], k["agent_connected"]) == (1, 1, 3)
    assert (k["offered"], k["inbound_answered"], k["inbound_abandoned"]) == (3, 2, 1)
    assert k["inbound_abandon_rate"] == pytest.approx(1 / 3)
    assert k["service_level"] == pytest.approx(1 / 3)
    assert k["avg_speed_of_answer_seconds"] == pytest.approx(22.5)
    assert k["abandon_rate"] == pytest.approx(1 / 2)
    assert k["conversion_rate"] == pytest.approx(1 / 5)  # over live contacts: 2 + 3
    assert k["conversation_rate"] == pytest.approx(2 / 5)
    assert k["completion_rate"] == pytest.approx(1 / 5)  # over dialed + offered
    assert k["avg_answer_to_agent_seconds"] == pytest.approx(46 / 3)
    assert k["wrapups_by_code"] == {"NI": 2, "SALE": 1}


def test_variant_scope_is_the_calls_dial_attribute():
    r = Reference(raw(inbound_scenario()), now_ms=NOW)
    assert "variant:A" in r.scopes() and "variant:B" in r.scopes()
    b = r.kpis("variant:B", *HOUR, now_ms=NOW)
    assert (b["dialed"], b["connected"], b["agent_connected"], b["handled"]) == (1, 1, 1, 1)
    assert b["wrapups_by_code"] == {"NI": 1}
    a = r.kpis("variant:A", *HOUR, now_ms=NOW)
    assert (a["dialed"], a["abandoned"], a["handled"]) == (1, 1, 0)
    assert r.kpis("list:L1", *HOUR, now_ms=NOW)["dialed"] == 2


def test_contract_1_1_validation():
    e = call("call.wrapup", 0, "c9", agent_id="A", wrapup_ms=1, disposition="sale")
    assert validate(json.dumps(dict(e, disposition_code="x" * 64)).encode(), NOW)
    assert "disposition_code" not in validate(json.dumps(dict(e, disposition_code=" ")).encode(), NOW)
    with pytest.raises(Invalid):
        validate(json.dumps(dict(e, disposition_code="x" * 65)).encode(), NOW)
    with pytest.raises(Invalid):
        validate(json.dumps(call("call.offered", 0, "c9", campaign=" ")).encode(), NOW)

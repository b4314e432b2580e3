"""The catalog: every KPI of the normative catalog (docs/kpis.md is generated from it), each formula
checked by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.kpi.catalog import (
    COUNTER_NAMES,
    KPI_BY_NAME,
    KPIS,
    PAUSED_BY_REASON,
    WRAPUPS_BY_CODE,
    compute_all,
    compute_some,
)

# The KPI names of the normative catalog's Counts, Durations, Agent time and Rates tables, written
# out here: tests read nothing outside the repository, and a user's clone has no catalog beside it.
NORMATIVE_KPIS = {
    "dialed", "attempts_completed", "answered", "connected", "machine_answered",
    "agent_connected", "abandoned", "handled", "conversations", "conversions", "goals_completed",
    "qualified_leads", "intent_high", "intent_medium", "intent_low", "refusals", "dnc_requests",
    "callbacks", "orders", "revenue", "surveys", "csat_sum", "csat_satisfied", "complaints",
    "qa_reviews", "qa_compliant", "qa_score_sum", "quality_reports", "mos_sum", "network_drops",
    "resolved",
    "avg_talk_seconds", "aht_seconds", "avg_wrapup_seconds", "avg_call_gap_seconds",
    "avg_answer_to_agent_seconds", "avg_ring_seconds",
    "staffed_seconds", "available_seconds", "on_call_seconds", "wrap_up_seconds",
    "paused_seconds", "productive_seconds", "occupancy", "calls_per_agent_hour",
    "calls_per_productive_hour",
    "connect_rate", "answer_rate", "machine_rate", "abandon_rate", "conversation_rate",
    "conversion_rate", "completion_rate", "lead_rate", "sales_conversion_rate", "refusal_rate",
    "callback_rate", "complaint_rate", "csat_avg", "csat_satisfied_rate", "resolution_rate",
    "qa_compliance_rate", "avg_mos", "network_drop_rate", "avg_order_value", "avg_lead_score",
    # 1.1: inbound and blended queues
    "offered", "inbound_answered", "inbound_abandoned", "inbound_abandon_rate", "service_level",
    "avg_speed_of_answer_seconds",
}

COUNTERS = {
    "dialed": 200, "answered": 60, "unanswered": 140, "connected": 40, "machine_answered": 15,
    "agent_connected": 38, "abandoned": 2, "handled": 36, "conversations": 30, "conversions": 6,
    "goals_completed": 9, "qualified_leads": 10, "refusals": 8, "dnc_requests": 1, "callbacks": 4,
    "orders": 5, "revenue": 1250.0, "surveys": 10, "csat_sum": 42, "csat_satisfied": 8,
    "complaints": 1, "qa_reviews": 4, "qa_compliant": 3, "qa_score_sum": 340.0,
    "quality_reports": 20, "mos_sum": 80.0, "network_drops": 1, "resolved": 12, "wrapups": 36,
    "talk_ms": 36 * 180_000, "hold_ms": 36 * 10_000, "wrapup_ms": 36 * 30_000,
    "answer_wait_ms": 38 * 800, "ring_ms": 150 * 12_000, "ring_reports": 150,
    "call_gap_ms": 30 * 20_000, "call_gaps": 30, "lead_score_sum": 600.0, "lead_scored": 10,
    "compliance_abandons": 3, "am_dispositions": 1,
    "staffed_ms": 4 * 3_600_000, "available_ms": 3_000_000, "on_call_ms": 7_200_000,
    "wrap_up_ms": 1_800_000, "paused_ms": 2_400_000, "paused_ms:break": 1_800_000,
    "paused_ms:lunch": 600_000,
}

EXPECTED = {
    "attempts_completed": 200, "dialed": 200, "connected": 40, "revenue": 1250.0,
    "avg_talk_seconds": 180.0, "aht_seconds": 220.0, "avg_wrapup_seconds": 30.0,
    "avg_call_gap_seconds": 20.0, "avg_answer_to_agent_seconds": 0.8, "avg_ring_seconds": 12.0,
    "staffed_seconds": 14_400.0, "available_seconds": 3000.0, "on_call_seconds": 7200.0,
    "wrap_up_seconds": 1800.0, "paused_seconds": 2400.0, "productive_seconds": 12_000.0,
    "occupancy": 0.75, "calls_per_agent_hour": 9.0, "calls_per_productive_hour": 36 / (12_000 / 3600),
    "connect_rate": 0.2, "answer_rate": 0.3, "machine_rate": 0.25, "abandon_rate": 0.05,
    "conversation_rate": 0.75, "conversion_rate": 0.15, "completion_rate": 0.045,
    "lead_rate": 0.25, "sales_conversion_rate": 0.5, "refusal_rate": 0.2, "callback_rate": 0.1,
    "complaint_rate": 0.025, "csat_avg": 4.2, "csat_satisfied_rate": 0.8,
    "resolution_rate": 1 / 3, "qa_compliance_rate": 0.75, "avg_mos": 4.0,
    "network_drop_rate": 0.05, "avg_order_value": 250.0, "avg_lead_score": 60.0,
}


def test_every_catalog_kpi_is_defined() -> None:
    assert not NORMATIVE_KPIS - set(KPI_BY_NAME)


def test_tests_read_nothing_outside_the_repository() -> None:
    """A user's clone has only the repository: no test may reach for the specs beside it."""
    tests = Path(__file__).resolve().parents[1]
    offenders = [str(p.relative_to(tests)) for p in tests.rglob("*.py")
                 if p != Path(__file__).resolve() and '"shared"' in p.read_text()]
    assert not offenders


@pytest.mark.parametrize("name,value", sorted(EXPECTED.items()))
def test_formula(name: str, value: float) -> None:
    assert KPI_BY_NAME[name].compute(COUNTERS) == pytest.approx(value)


def test_zero_denominator_is_null_and_counts_are_zero() -> None:
    values = compute_all({})
    for kpi in KPIS:
        if kpi.denominator:
            assert values[kpi.name] is None, kpi.name
        else:
            assert values[kpi.name] == 0, kpi.name
    assert values[PAUSED_BY_REASON] == {}


INBOUND = {"offered": 10, "inbound_answered": 8, "inbound_abandoned": 2,
           "inbound_answered_in_sl": 6, "inbound_answer_wait_ms": 8 * 12_000}


@pytest.mark.parametrize("name,value", sorted({
    "offered": 10, "inbound_answered": 8, "inbound_abandoned": 2, "inbound_abandon_rate": 0.2,
    "service_level": 0.6, "avg_speed_of_answer_seconds": 12.0,
    # the funnel rates are over live contacts = connected + offered (40 + 10)
    "conversation_rate": 30 / 50, "conversion_rate": 6 / 50, "lead_rate": 10 / 50,
    "refusal_rate": 8 / 50, "callback_rate": 4 / 50, "complaint_rate": 1 / 50,
    # completion over every call placed or received, dialed + offered
    "completion_rate": 9 / 210,
    # outbound only
    "abandon_rate": 0.05, "connect_rate": 0.2, "dialed": 200,
}.items()))
def test_inbound_formulas(name: str, value: float) -> None:
    assert KPI_BY_NAME[name].compute({**COUNTERS, **INBOUND}) == pytest.approx(value)


def test_wrapups_by_code_is_a_count_per_disposition_code() -> None:
    got = compute_all({**COUNTERS, "wrapups:SALE": 5.0, "wrapups:NI": 3.0, "wrapups:X": 0.0})
    assert got[WRAPUPS_BY_CODE] == {"NI": 3, "SALE": 5}
    assert compute_all({})[WRAPUPS_BY_CODE] == {}


def test_paused_by_reason_in_seconds() -> None:
    assert compute_all(COUNTERS)[PAUSED_BY_REASON] == {"break": 1800.0, "lunch": 600.0}


def test_counts_are_integers() -> None:
    assert isinstance(compute_all({"dialed": 3.0})["dialed"], int)


def test_formulas_only_name_stored_counters() -> None:
    for kpi in KPIS:
        assert set(kpi.numerator + kpi.denominator) <= COUNTER_NAMES
        assert kpi.formula


def test_docs_are_generated_from_the_catalog() -> None:
    from stream.kpi.docs import render
    doc = Path(__file__).resolve().parents[2] / "docs" / "kpis.md"
    assert doc.read_text() == render(), "run: python -m stream.kpi.docs > docs/kpis.md"


def test_formula_text_keeps_sums_together() -> None:
    """HELP texts and docs/kpis.md must read as the arithmetic is done."""
    assert KPI_BY_NAME["occupancy"].formula.startswith("(on_call_ms + wrap_up_ms) ÷ (")


VALUES = st.one_of(st.sampled_from([0, 0.0, -0.0, 1, 3.0, 1e17, -4.0, 0.1]),
                   st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(COUNTER_NAMES) + ["paused_ms:lunch", "wrapups:SALE", "x:y"]),
                       VALUES))
def test_compute_all_is_each_kpis_compute(counters: dict[str, float]) -> None:
    """`compute_all` runs the catalog compiled into one function (it runs for every grid row):
    each value is exactly `Kpi.compute`'s, of the same type, in catalog order."""
    got = compute_all(counters)
    assert list(got) == [k.name for k in KPIS] + [PAUSED_BY_REASON, WRAPUPS_BY_CODE]
    for kpi in KPIS:
        want = kpi.compute(counters)
        assert type(got[kpi.name]) is type(want) and repr(got[kpi.name]) == repr(want), kpi.name


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(COUNTER_NAMES)), VALUES),
       st.lists(st.sampled_from([k.name for k in KPIS]), min_size=1, max_size=8, unique=True))
def test_compute_some_is_compute_all_restricted(counters: dict[str, float], names: list[str]) -> None:
    """A grid asking for a few KPIs (`compute_some`) gets exactly `compute_all`'s values for
    them, of the same type, in the order asked."""
    got = compute_some(tuple(names))(counters)
    everything = compute_all(counters)
    assert list(got) == names
    for name in names:
        assert type(got[name]) is type(everything[name]) and repr(got[name]) == repr(everything[name]), name

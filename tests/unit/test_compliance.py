"""Abandon-rate compliance: US 30-day rate, UK daily rate with machine estimate, headroom,
projection, status and group pooling, by hand."""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType

import pytest

from stream.kpi.compliance import (
    ComplianceConfig,
    ComplianceGroup,
    abandon_headroom,
    compliance_kpis,
    compliance_report,
    day_fraction,
    machine_estimate,
    pool,
    projected_rate,
    rate_status,
    uk_abandon_rate,
    us_abandon_rate,
)


def ms(s: str) -> int:
    return int(datetime.fromisoformat(s).timestamp() * 1000)


def test_us_rate():
    assert us_abandon_rate({"compliance_abandons": 6, "connected": 200}) == pytest.approx(0.03)
    assert us_abandon_rate({"compliance_abandons": 3}) is None  # zero denominator


def test_uk_rate_with_machine_estimate_by_hand():
    today = {"abandoned": 10, "agent_connected": 190, "am_dispositions": 19}
    # 10 % of agent-connected calls were machines, so 1 of the 10 abandons is estimated a machine.
    assert machine_estimate(today) == pytest.approx(1.0)
    assert uk_abandon_rate(today) == pytest.approx((10 - 1) / (190 + 10))


def test_uk_rate_is_over_outbound_calls_only():
    """Contract 1.1: a blended campaign's inbound connects are no outbound calls; they must not
    dilute the UK rate (their abandons are inbound_abandoned, never counted here)."""
    outbound = {"abandoned": 10, "agent_connected": 190, "am_dispositions": 19}
    blended = {**outbound, "agent_connected": 190 + 300, "inbound_agent_connected": 300}
    assert machine_estimate(blended) == pytest.approx(1.0)
    assert uk_abandon_rate(blended) == uk_abandon_rate(outbound)


def test_uk_machine_estimate_zero_without_agent_connects():
    today = {"abandoned": 4, "am_dispositions": 3}
    assert machine_estimate(today) == 0
    assert uk_abandon_rate(today) == pytest.approx(1.0)
    assert uk_abandon_rate({}) is None


def test_uk_machine_share_capped_at_one():
    today = {"abandoned": 5, "agent_connected": 2, "am_dispositions": 4}
    assert machine_estimate(today) == 5
    assert uk_abandon_rate(today) == 0


def test_headroom_by_hand_and_exact_at_the_boundary():
    assert abandon_headroom({"connected": 1000, "compliance_abandons": 25}, 0.03) == 5
    assert abandon_headroom({"connected": 1000, "compliance_abandons": 30}, 0.03) == 0
    assert abandon_headroom({"connected": 1000, "compliance_abandons": 40}, 0.03) == 0
    assert abandon_headroom({}, 0.03) == 0
    # 0.29 × 100 is 28.999999999999996 in floats; the exact answer is 29.
    assert abandon_headroom({"connected": 100}, 0.29) == 29
    assert abandon_headroom({"connected": 99, "compliance_abandons": 0}, 0.03) == 2  # 2.97


def test_status_thresholds_exact():
    assert rate_status(None, 0.03) == "no_data"
    assert rate_status(0.0239, 0.03) == "ok"
    assert rate_status(24 / 1000, 0.03) == "warn"       # exactly 80 % of the limit
    assert rate_status(3 / 100, 0.03) == "critical"     # exactly the limit
    assert rate_status(0.05, 0.03) == "critical"


def test_projection_by_hand():
    window = {"compliance_abandons": 20, "connected": 1000}
    today = {"compliance_abandons": 5, "connected": 50}
    # A quarter of the day gone: today projects to 20 abandons of 200 connects.
    expected = (20 - 5 + 20) / (1000 - 50 + 200)
    assert projected_rate(window, today, 0.25) == pytest.approx(expected)
    # At the end of the day the projection is the current rate.
    assert projected_rate(window, today, 1.0) == pytest.approx(0.02)
    # Before the day starts: the rate as it is.
    assert projected_rate(window, today, 0.0) == pytest.approx(0.02)
    assert projected_rate({}, {}, 0.5) is None


def test_day_fraction_is_dst_aware():
    # London, 2026-03-29 is 23 h long; 12:00 UTC = 13:00 BST is 12 h after local midnight.
    assert day_fraction(ms("2026-03-29T12:00:00+00:00"), "Europe/London") \
        == pytest.approx(12 / 23)
    assert day_fraction(ms("2026-11-20T06:00:00+00:00"), "UTC") == pytest.approx(0.25)


def test_compliance_kpis_worst_status_wins():
    window = {"compliance_abandons": 10, "connected": 1000}       # 1 %: ok
    today = {"abandoned": 3, "agent_connected": 97}               # 3 %: critical
    k = compliance_kpis(window, today, limit=0.03, day_fraction=0.5)
    assert k["us_abandon_rate_30d"] == pytest.approx(0.01)
    assert k["uk_abandon_rate_today"] == pytest.approx(0.03)
    assert k["abandon_headroom"] == 20
    assert k["status"] == "critical"
    us_only = compliance_kpis(window, today, limit=0.03, day_fraction=0.5,
                              status_rates=("us_abandon_rate_30d",))
    assert us_only["status"] == "ok"
    assert compliance_kpis({}, {}, limit=0.03, day_fraction=0.5)["status"] == "no_data"


CFG = ComplianceConfig(
    default_limit=0.03,
    groups=(ComplianceGroup("east", ("c1", "c2"), limit=0.02),),
    campaign_limits=MappingProxyType({"c2": 0.05}),
)


def test_limits_precedence():
    assert CFG.limit_for("c1") == 0.02   # its group's
    assert CFG.limit_for("c2") == 0.05   # its own beats its group's
    assert CFG.limit_for("c3") == 0.03   # the default


def test_report_pools_group_counters():
    w = {"c1": {"compliance_abandons": 1, "connected": 100},
         "c2": {"compliance_abandons": 3, "connected": 100},
         "c3": {"compliance_abandons": 0, "connected": 10}}
    t = {"c1": {"abandoned": 1, "agent_connected": 99},
         "c2": {"abandoned": 0, "agent_connected": 50}}
    report = compliance_report(w, t, CFG, day_fraction=1.0)
    by = {(e["campaign_id"], e["group"]): e for e in report}
    assert [(e["campaign_id"], e["group"]) for e in report] == [
        ("c1", False), ("c2", False), ("c3", False), ("east", True)]
    east = by[("east", True)]
    assert east["campaigns"] == ["c1", "c2"]
    assert east["limit"] == 0.02
    # Pooled, not averaged: (1 + 3) / (100 + 100).
    assert east["us_abandon_rate_30d"] == pytest.approx(0.02)
    assert east["uk_abandon_rate_today"] == pytest.approx(1 / 150)
    assert east["abandon_headroom"] == 0
    assert east["status"] == "critical"       # 2 % against its 2 % limit
    assert by[("c2", False)]["status"] == "ok"  # 3 % against its own 5 %
    assert by[("c1", False)]["uk_abandon_rate_today"] == pytest.approx(0.01)
    assert by[("c3", False)]["uk_abandon_rate_today"] is None
    assert by[("c3", False)]["campaigns"] == ["c3"]


def test_report_reports_a_group_with_no_data():
    cfg = ComplianceConfig(groups=(ComplianceGroup("idle", ("x",)),))
    (entry,) = compliance_report({}, {}, cfg, day_fraction=0.5)
    assert entry["campaign_id"] == "idle" and entry["group"] and entry["status"] == "no_data"
    assert entry["limit"] == 0.03


def test_pool():
    assert pool([{"a": 1, "b": 2}, {"a": 3}, {}]) == {"a": 4, "b": 2}

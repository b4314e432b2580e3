"""SMART targets: scope patterns, windows, attainment, status and pace to a deadline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from stream.kpi.targets import (
    Target,
    attainment,
    calendar_period,
    evaluate,
    expand_scopes,
    parse_scope_pattern,
    status_of,
    threshold_problem,
    window_range,
)

HOUR = 3_600_000


def ms(s: str) -> int:
    return int(datetime.fromisoformat(s).timestamp() * 1000)


KNOWN = {"campaign": ["c2", "c1"], "team": ["t1", "t2"], "agent": ["a1", "a2", "a3", "a4"]}
TEAM_OF = {"a1": "t1", "a2": "t2", "a3": "t1", "a9": "t1"}


@pytest.mark.parametrize("pattern, expected", [
    ("center", ["center"]),
    ("campaign:c1", ["campaign:c1"]),
    ("campaign:unknown", ["campaign:unknown"]),  # reported as no_data, not dropped
    ("campaign:*", ["campaign:c1", "campaign:c2"]),
    ("team:*", ["team:t1", "team:t2"]),
    ("agent:*", ["agent:a1", "agent:a2", "agent:a3", "agent:a4"]),
    ("agent:*@team:t1", ["agent:a1", "agent:a3", "agent:a9"]),
    ("agent:*@team:nobody", []),
    ("list:*", []),
])
def test_expand_scopes(pattern, expected):
    assert expand_scopes(pattern, KNOWN, TEAM_OF) == expected


@pytest.mark.parametrize("bad", [
    "", "centre", "campaign", "campaign:", "team:*@team:t1", "agent:*@campaign:c1",
    "agent:*@team:", "agent:a*", "queue:q1",
])
def test_bad_scope_patterns(bad):
    with pytest.raises(ValueError):
        parse_scope_pattern(bad)


def test_scope_pattern_keeps_colons_in_ids():
    assert parse_scope_pattern("caller_id:+44:20").ident == "+44:20"


def test_attainment_is_direction_aware_and_none_when_undefined():
    assert attainment(0.30, 0.27, "higher") == pytest.approx(0.9)
    assert attainment(0.03, 0.06, "lower") == pytest.approx(0.5)
    assert attainment(0, 5, "higher") is None
    assert attainment(0.03, 0, "lower") is None
    assert attainment(0.3, None, "higher") is None


def target(**kw: Any) -> Target:
    base: dict[str, Any] = dict(name="t", kpi="connect_rate", scope="center", window="today", goal=0.30,
                                direction="higher", warn=0.25, critical=0.20)
    base.update(kw)
    return Target(**base)


@pytest.mark.parametrize("value, status", [
    (0.35, "ok"), (0.30, "ok"), (0.25, "ok"), (0.2499, "warn"), (0.20, "warn"),
    (0.1999, "critical"), (None, "no_data"),
])
def test_status_higher(value, status):
    assert status_of(target(), value) == status


@pytest.mark.parametrize("value, status", [
    (0.01, "ok"), (0.02, "ok"), (0.0201, "warn"), (0.03, "warn"), (0.0301, "critical"),
])
def test_status_lower(value, status):
    t = target(kpi="abandon_rate", direction="lower", goal=0.015, warn=0.02, critical=0.03)
    assert status_of(t, value) == status


def test_warn_defaults_to_goal_and_no_critical_means_never_critical():
    t = target(warn=None, critical=None)
    assert status_of(t, 0.30) == "ok"
    assert status_of(t, 0.29) == "warn"
    assert status_of(t, 0.0) == "warn"


@pytest.mark.parametrize("direction, goal, warn, critical, field", [
    ("higher", 0.30, 0.35, None, "warn"),       # warn above the goal
    ("higher", 0.30, 0.25, 0.27, "critical"),   # critical above warn
    ("higher", 0.30, None, 0.31, "critical"),   # critical above the goal
    ("lower", 0.03, 0.02, None, "warn"),        # warn below the goal
    ("lower", 0.03, 0.04, 0.035, "critical"),   # critical below warn
    ("sideways", 1, None, None, "direction"),
])
def test_threshold_on_the_wrong_side(direction, goal, warn, critical, field):
    problem = threshold_problem(direction, goal, warn, critical)
    assert problem is not None and problem[0] == field
    with pytest.raises(ValueError):
        target(direction=direction, goal=goal, warn=warn, critical=critical)


def test_thresholds_equal_to_goal_are_allowed():
    assert threshold_problem("higher", 1, 1, 1) is None
    assert threshold_problem("lower", 1, 1, 1) is None


def test_evaluate_without_deadline():
    r = evaluate(target(), 0.27, now_ms=0, window_from_ms=-HOUR, window_to_ms=0)
    assert (r.value, r.status, r.projected, r.required_per_hour) == (0.27, "ok", None, None)
    assert r.attainment == pytest.approx(0.9)
    assert evaluate(target(), None, now_ms=0, window_from_ms=-HOUR, window_to_ms=0).status \
        == "no_data"


def weekly_leads(**kw: Any) -> Target:
    # 200 qualified leads in the week starting Monday 2026-11-23 00:00 UTC, due Friday 18:00.
    return Target(name="leads", kpi="qualified_leads", scope="campaign:c1", window="week",
                  goal=200, warn=180, critical=150,
                  deadline=datetime(2026, 11, 27, 18, tzinfo=UTC), **kw)


def test_deadline_pace_by_hand():
    start = ms("2026-11-23T00:00:00+00:00")
    now = ms("2026-11-24T00:00:00+00:00")  # 24 h elapsed, 90 h to the deadline
    r = evaluate(weekly_leads(), 40, now_ms=now, window_from_ms=start, window_to_ms=now)
    assert r.projected == pytest.approx(40 + 40 / 24 * 90)  # 190
    assert r.required_per_hour == pytest.approx((200 - 40) / 90)
    assert r.attainment == pytest.approx(0.2)
    assert r.status == "ok"  # judged on the projection (190 ≥ warn 180), not on 40


def test_deadline_pace_behind_is_judged_on_projection():
    start = ms("2026-11-23T00:00:00+00:00")
    now = ms("2026-11-25T00:00:00+00:00")  # 48 h elapsed, 66 h left
    r = evaluate(weekly_leads(), 60, now_ms=now, window_from_ms=start, window_to_ms=now)
    assert r.projected == pytest.approx(60 + 60 / 48 * 66)  # 142.5 < critical 150
    assert r.status == "critical"


def test_deadline_goal_already_met_needs_nothing_more():
    start = ms("2026-11-23T00:00:00+00:00")
    now = ms("2026-11-25T00:00:00+00:00")
    r = evaluate(weekly_leads(), 210, now_ms=now, window_from_ms=start, window_to_ms=now)
    assert r.required_per_hour == 0.0 and r.status == "ok"


def test_deadline_passed():
    start = ms("2026-11-23T00:00:00+00:00")
    now = ms("2026-11-28T00:00:00+00:00")
    r = evaluate(weekly_leads(), 170, now_ms=now, window_from_ms=start, window_to_ms=now)
    assert r.projected == 170 and r.required_per_hour is None and r.status == "warn"


def test_deadline_at_window_start_has_no_projection():
    start = ms("2026-11-23T00:00:00+00:00")
    r = evaluate(weekly_leads(), 0, now_ms=start, window_from_ms=start, window_to_ms=start)
    assert r.projected is None
    assert r.required_per_hour == pytest.approx(200 / 114)
    assert r.status == "critical"  # no pace yet: judged on the value


def test_calendar_week_starts_local_monday():
    # Sunday 2026-11-29 23:30 UTC is already Monday 2026-11-30 in Tokyo.
    now = ms("2026-11-29T23:30:00+00:00")
    assert calendar_period("week", now, "UTC")[0] == ms("2026-11-23T00:00:00+00:00")
    assert calendar_period("week", now, "Asia/Tokyo")[0] == ms("2026-11-30T00:00:00+09:00")


def test_calendar_day_is_dst_correct():
    # London, 2026-03-29: clocks go forward, the local day is 23 hours long.
    start, end = calendar_period("today", ms("2026-03-29T12:00:00+00:00"), "Europe/London")
    assert (end - start) == 23 * HOUR
    start, end = calendar_period("today", ms("2026-10-25T12:00:00+00:00"), "Europe/London")
    assert (end - start) == 25 * HOUR


def test_calendar_month():
    now = ms("2026-12-31T22:00:00+00:00")
    assert calendar_period("month", now, "UTC") == (ms("2026-12-01T00:00:00+00:00"),
                                                    ms("2027-01-01T00:00:00+00:00"))
    # 23:00 UTC on Dec 31 is already January in Berlin.
    assert calendar_period("month", ms("2026-12-31T23:30:00+00:00"), "Europe/Berlin")[0] \
        == ms("2027-01-01T00:00:00+01:00")


def test_window_range():
    now = ms("2026-11-25T10:07:30+00:00")
    assert window_range("week", now, "UTC") == (ms("2026-11-23T00:00:00+00:00"), now)
    assert window_range("month", now, "UTC") == (ms("2026-11-01T00:00:00+00:00"), now)
    assert window_range("today", now, "UTC") == (ms("2026-11-25T00:00:00+00:00"), now)
    start, end = window_range("1h", now, "UTC")
    assert end == now and now - start <= HOUR
    with pytest.raises(ValueError):
        window_range("2w", now, "UTC")

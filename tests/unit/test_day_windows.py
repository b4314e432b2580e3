"""Day buckets and local steps: whole local days (23, 24 or 25 h), calendar windows, the
readability rules of long ranges, series steps and comparison ranges."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from stream.kpi.windows import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    Range,
    WindowError,
    check_range,
    decompose,
    local_day_of,
    resolve_window,
)
from stream.readers.history import Compare, HistoryError, Step, comparison_ranges, hour_cells, months_of, series_ranges
from stream.store.layout import Layout, agent_history_suffixes, day_key_expiry

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_whole_local_days_come_from_day_buckets_and_dst_days_are_23_and_25_hours() -> None:
    r = Range(ms("2026-03-28T00:00:00+01:00"), ms("2026-03-30T00:00:00+02:00"))
    d = decompose(r, BERLIN)
    assert d.days == (ms("2026-03-28T00:00:00+01:00"), ms("2026-03-29T00:00:00+01:00"))
    assert not d.hours and not d.minutes
    assert r.end - d.days[1] == 23 * HOUR_MS
    fall = Range(ms("2026-10-25T00:00:00+02:00"), ms("2026-10-26T00:00:00+01:00"))
    assert fall.end - fall.start == 25 * HOUR_MS and decompose(fall, BERLIN).days == (fall.start,)


def test_ragged_ends_are_hours_and_minutes() -> None:
    r = Range(ms("2026-11-02T21:30:00+01:00"), ms("2026-11-05T01:15:00+01:00"))
    d = decompose(r, BERLIN)
    assert d.days == (ms("2026-11-03T00:00:00+01:00"), ms("2026-11-04T00:00:00+01:00"))
    assert d.hours == (ms("2026-11-02T22:00:00+01:00"), ms("2026-11-02T23:00:00+01:00"),
                       ms("2026-11-05T00:00:00+01:00"))
    assert len(d.minutes) == 30 + 15
    assert decompose(r).days == ()  # without a zone: hours and minutes only


def test_a_half_hour_zone_reads_its_local_days_from_day_buckets() -> None:
    """A Kolkata day starts at 18:30 UTC: no hour bucket starts there, a day bucket does."""
    r = Range(ms("2026-11-01T00:00:00+05:30"), ms("2026-11-08T00:00:00+05:30"))
    now = r.end + 40 * DAY_MS
    assert check_range(r.start, r.end, now, KOLKATA) == r
    with pytest.raises(WindowError, match="local midnight"):
        check_range(r.start + HOUR_MS, r.end, now, KOLKATA)


def test_long_range_rules() -> None:
    now = ms("2026-12-01T10:00:00+01:00")
    year = Range(ms("2025-11-01T00:00:00+01:00"), ms("2026-12-01T00:00:00+01:00"))
    assert check_range(year.start, year.end, now, BERLIN) == year  # 13 months
    with pytest.raises(WindowError, match="400 days"):
        check_range(now - 401 * DAY_MS - now % MINUTE_MS, now - now % MINUTE_MS, now, BERLIN)
    with pytest.raises(WindowError, match="local midnight"):
        check_range(year.start + HOUR_MS, year.end, now, BERLIN)
    # within the hour retention a whole hour is enough, within 48 h a whole minute
    assert check_range(now - 20 * DAY_MS, now - now % HOUR_MS, now, BERLIN)
    with pytest.raises(WindowError, match="whole hour"):
        check_range(now - 3 * DAY_MS - 15 * MINUTE_MS, now - now % HOUR_MS, now, BERLIN)
    with pytest.raises(WindowError, match="35 days"):
        check_range(year.start, year.end, now)  # without day buckets


def test_calendar_windows() -> None:
    now = ms("2026-11-18T10:00:00+01:00")  # a Wednesday
    assert resolve_window("week", now, BERLIN) == Range(ms("2026-11-16T00:00:00+01:00"), now)
    assert resolve_window("last_week", now, BERLIN) == Range(
        ms("2026-11-09T00:00:00+01:00"), ms("2026-11-16T00:00:00+01:00"))
    assert resolve_window("last_month", now, BERLIN) == Range(
        ms("2026-10-01T00:00:00+02:00"), ms("2026-11-01T00:00:00+01:00"))
    assert resolve_window("quarter", now, BERLIN).start == ms("2026-10-01T00:00:00+02:00")
    assert resolve_window("last_quarter", now, BERLIN) == Range(
        ms("2026-07-01T00:00:00+02:00"), ms("2026-10-01T00:00:00+02:00"))
    assert resolve_window("year", now, BERLIN).start == ms("2026-01-01T00:00:00+01:00")
    assert resolve_window("yesterday", now, BERLIN).end == ms("2026-11-18T00:00:00+01:00")


def test_day_bucket_of_a_minute_is_its_local_date() -> None:
    assert local_day_of(ms("2026-10-31T23:30:00+00:00"), BERLIN) == ("2026-11", 1)
    assert local_day_of(ms("2026-10-31T22:59:00+00:00"), BERLIN) == ("2026-10", 31)
    assert local_day_of(ms("2026-10-31T22:59:00+00:00"), BERLIN).date == "2026-10-31"
    expiry = day_key_expiry("2026-10-31", BERLIN)
    assert expiry == ms("2026-11-01T00:00:00+01:00") + 401 * DAY_MS
    assert Layout("ck:", BERLIN).day_key("team:t1", "2026-10-31") == "ck:d:team:t1:2026-10-31"
    days = [b for k, b in agent_history_suffixes(ms("2026-11-18T10:00:00+01:00"), BERLIN) if k == "d"]
    assert days[0] == "2025-10-12" and days[-1] == "2026-11-19"


def test_series_steps_are_local_and_clipped() -> None:
    r = Range(ms("2026-10-24T12:00:00+02:00"), ms("2026-10-27T00:00:00+01:00"))
    days = series_ranges(r, Step.DAY, BERLIN)
    assert [p.end - p.start for p in days] == [12 * HOUR_MS, 25 * HOUR_MS, 24 * HOUR_MS]
    hours = series_ranges(Range(ms("2026-10-25T00:00:00+02:00"), ms("2026-10-26T00:00:00+01:00")),
                          Step.HOUR, BERLIN)
    assert len(hours) == 25
    kolkata = series_ranges(Range(ms("2026-11-01T00:00:00+05:30"), ms("2026-11-01T03:00:00+05:30")),
                            Step.HOUR, KOLKATA)
    assert [p.start for p in kolkata][1] == ms("2026-11-01T01:00:00+05:30")
    weeks = series_ranges(Range(ms("2026-11-04T00:00:00+01:00"), ms("2026-11-20T00:00:00+01:00")),
                          Step.WEEK, BERLIN)
    assert [p.start for p in weeks][1:] == [ms("2026-11-09T00:00:00+01:00"), ms("2026-11-16T00:00:00+01:00")]
    months = series_ranges(Range(ms("2025-12-01T00:00:00+01:00"), ms("2026-12-01T00:00:00+01:00")),
                           Step.MONTH, BERLIN)
    assert len(months) == 12
    with pytest.raises(HistoryError, match="1000 points"):
        series_ranges(Range(0, 400 * DAY_MS), Step.MIN15, BERLIN)


def test_comparison_ranges() -> None:
    points = [Range(ms("2028-02-29T00:00:00+01:00"), ms("2028-03-01T00:00:00+01:00"))]
    r = points[0]
    (year,) = comparison_ranges(points, r, Step.DAY, Compare.PREVIOUS_YEAR, BERLIN)
    assert year == Range(ms("2027-02-28T00:00:00+01:00"), ms("2027-03-01T00:00:00+01:00"))
    (week,) = comparison_ranges(points, r, Step.DAY, Compare.PREVIOUS_WEEK, BERLIN)
    assert week.start == ms("2028-02-22T00:00:00+01:00")
    two = series_ranges(Range(ms("2026-11-02T00:00:00+01:00"), ms("2026-11-04T00:00:00+01:00")),
                        Step.DAY, BERLIN)
    before = comparison_ranges(two, Range(two[0].start, two[-1].end), Step.DAY,
                               Compare.PREVIOUS_PERIOD, BERLIN)
    assert before == [Range(ms("2026-10-31T00:00:00+01:00"), ms("2026-11-01T00:00:00+01:00")),
                      Range(ms("2026-11-01T00:00:00+01:00"), ms("2026-11-02T00:00:00+01:00"))]
    assert months_of(Range(ms("2026-10-15T00:00:00+02:00"), ms("2026-12-01T00:00:00+01:00")),
                     BERLIN) == ["2026-10", "2026-11"]


def test_hour_cells_are_local_hours_and_refuse_half_hour_zones() -> None:
    r = Range(ms("2026-10-25T00:00:00+02:00"), ms("2026-10-26T00:00:00+01:00"))
    keys, cells = hour_cells(r, False, BERLIN)
    assert [h for _, h in keys] == list(range(24))
    assert len(cells[keys.index((-1, 2))]) == 2  # 02:00 happened twice
    with pytest.raises(HistoryError, match="whole-hour"):
        hour_cells(Range(ms("2026-11-01T00:00:00+05:30"), ms("2026-11-02T00:00:00+05:30")),
                   False, KOLKATA)

"""Windows and bucket decomposition: every window reads exactly its buckets. Day buckets and
local steps: whole local days (23, 24 or 25 h), calendar windows, the readability rules of long
ranges, series steps and comparison ranges."""

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
    local_midnight,
    resolve_window,
    split_by_minute,
)
from stream.readers.history import Compare, HistoryError, Step, comparison_ranges, hour_cells, months_of, series_ranges
from stream.store.layout import Layout, agent_history_suffixes, day_key_expiry

UTC = ZoneInfo("UTC")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def covered(r: Range) -> set[int]:
    """The minute buckets a decomposition reads (hour buckets expanded to their minutes)."""
    d = decompose(r)
    minutes = set(d.minutes)
    for h in d.hours:
        minutes |= set(range(h, h + HOUR_MS, MINUTE_MS))
    return minutes


@pytest.mark.parametrize("start,end", [
    ("2026-11-20T09:15:00+00:00", "2026-11-20T09:20:00+00:00"),
    ("2026-11-20T09:15:00+00:00", "2026-11-20T12:07:00+00:00"),
    ("2026-11-20T09:00:00+00:00", "2026-11-20T10:00:00+00:00"),
    ("2026-11-19T23:59:00+00:00", "2026-11-21T00:01:00+00:00"),
])
def test_decomposition_covers_each_minute_once(start: str, end: str) -> None:
    r = Range(ms(start), ms(end))
    d = decompose(r)
    assert covered(r) == set(range(r.start, r.end, MINUTE_MS))
    expanded = len(d.minutes) + 60 * len(d.hours)
    assert expanded == (r.end - r.start) // MINUTE_MS  # no bucket twice
    assert len(d.minutes) <= 118


def test_live_end_reads_the_current_partial_minute() -> None:
    now = ms("2026-11-20T09:15:42+00:00")
    r = resolve_window("5m", now, UTC)
    assert r.start == ms("2026-11-20T09:11:00+00:00") and r.end == now
    assert decompose(r).minutes[-1] == ms("2026-11-20T09:15:00+00:00")
    assert len(decompose(r).minutes) == 5


def test_thirty_days_uses_whole_hours() -> None:
    now = ms("2026-11-20T09:15:42+00:00")
    r = resolve_window("30d", now, UTC)
    assert r.start % HOUR_MS == 0 and (now - r.start) <= 30 * DAY_MS
    d = decompose(r)
    assert len(d.hours) == 720 and not d.minutes


def test_today_is_local_and_dst_correct() -> None:
    ny = ZoneInfo("America/New_York")
    # 2026-11-01 is the day DST ends in New York: midnight is 04:00 UTC, the day lasts 25 hours.
    now = ms("2026-11-01T20:00:00+00:00")
    assert local_midnight(now, ny) == ms("2026-11-01T04:00:00+00:00")
    assert local_midnight(ms("2026-11-02T12:00:00+00:00"), ny) == ms("2026-11-02T05:00:00+00:00")
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: midnight is not on a UTC hour
    r = resolve_window("today", ms("2026-11-20T09:15:00+00:00"), kolkata)
    assert r.start == ms("2026-11-19T18:30:00+00:00")
    assert covered(r) == set(range(r.start, r.end, MINUTE_MS))


@pytest.mark.parametrize("start,end,words", [
    (0, 0, "after"),
    (MINUTE_MS + 1, 3 * MINUTE_MS, "aligned"),
])
def test_bad_ranges(start: int, end: int, words: str) -> None:
    now = ms("2026-11-20T09:15:00+00:00")
    with pytest.raises(WindowError, match=words):
        check_range(now - 10 * MINUTE_MS + start, now - 10 * MINUTE_MS + end, now)


def test_old_ranges_need_whole_hours_and_retention() -> None:
    now = ms("2026-11-20T09:15:00+00:00")
    with pytest.raises(WindowError, match="whole hour"):
        check_range(now - 3 * DAY_MS + 15 * MINUTE_MS, now, now)
    with pytest.raises(WindowError, match="retention"):
        check_range(now - 40 * DAY_MS, now, now)
    assert check_range(now - 3 * DAY_MS - 15 * MINUTE_MS, now, now)


def test_unknown_window() -> None:
    with pytest.raises(WindowError, match="unknown window"):
        resolve_window("7m", 0, UTC)


def test_split_by_minute() -> None:
    t = ms("2026-11-20T09:15:30+00:00")
    assert split_by_minute(t, t + 90_000) == [(t - 30_000, 30_000), (t + 30_000, 60_000)]
    assert sum(x for _, x in split_by_minute(t, t + 3 * HOUR_MS + 7)) == 3 * HOUR_MS + 7
    assert split_by_minute(t, t) == []




# -- issue 9 item 8 / 17: every range is answered exactly or refused ---------------------------

from stream.kpi.windows import MAX_AHEAD_MS, check_readable  # noqa: E402


def test_old_range_ending_off_the_hour_is_refused() -> None:
    """Starts on a whole hour 3 days back, ends at :15 still more than 48 h back: the end's minute
    buckets have expired, so the range cannot be answered and must not be read short."""
    now = ms("2026-11-20T09:15:00+00:00")
    start = now - 3 * DAY_MS - 15 * MINUTE_MS  # 06:00, 3 days back
    end = start + 5 * HOUR_MS + 15 * MINUTE_MS  # 11:15, 2 days 22 h back
    with pytest.raises(WindowError, match="whole hour"):
        check_range(start, end, now)
    # the same range ending on the hour is read from hour buckets alone and is answered
    assert check_range(start, start + 5 * HOUR_MS, now) == Range(start, start + 5 * HOUR_MS)
    # ends off the hour but within 48 h: its minute buckets are kept, answered exactly
    assert check_range(start, now - 47 * HOUR_MS + 15 * MINUTE_MS, now)


def test_week_in_half_hour_zones_is_refused_once_its_start_minutes_expire() -> None:
    """A `week` target in Asia/Kolkata starts at Sunday 18:30 UTC; three days in, the minute
    buckets of 18:30-19:00 are gone and the week cannot be answered exactly."""
    from stream.kpi.targets import window_range
    for zone in ("Asia/Kolkata", "Asia/Kathmandu"):
        now = ms("2026-11-19T09:15:00+00:00")  # a Thursday
        start, end = window_range("week", now, ZoneInfo(zone))
        assert start % HOUR_MS  # local midnight is not on a UTC hour
        with pytest.raises(WindowError, match="whole hour"):
            check_readable(Range(start, end), now)
        # on Monday the week is young, its minute buckets are kept: answered
        monday = start + 10 * HOUR_MS
        check_readable(Range(start, monday), monday)
    berlin = window_range("week", ms("2026-11-19T09:15:00+00:00"), ZoneInfo("Europe/Berlin"))
    check_readable(Range(*berlin), ms("2026-11-19T09:15:00+00:00"))


def test_thirty_days_is_exactly_thirty_days_of_buckets() -> None:
    for now_text in ("2026-11-20T09:15:42+00:00", "2026-11-20T09:00:00+00:00",
                     "2026-11-20T09:59:59+00:00"):
        now = ms(now_text)
        r = resolve_window("30d", now, UTC)
        d = decompose(r)
        covered_ms = len(d.hours) * HOUR_MS + len(d.minutes) * MINUTE_MS
        assert covered_ms == 30 * DAY_MS, now_text
        assert r.start <= now < r.end  # the current (partial) hour is in it
        check_readable(r, now)


def test_today_in_a_zone_that_repeats_its_midnight_hour() -> None:
    """America/Havana ends DST at 01:00 local back to 00:00: 00:00-01:00 happens twice on
    2026-11-01 (04:00 and 05:00 UTC). During the second pass `today` still starts at the first."""
    havana = ZoneInfo("America/Havana")
    for now_text in ("2026-11-01T05:30:00+00:00", "2026-11-01T04:30:00+00:00",
                     "2026-11-01T20:00:00+00:00"):
        r = resolve_window("today", ms(now_text), havana)
        assert r.start == ms("2026-11-01T04:00:00+00:00"), now_text
    # a zone with no local 00:00 (DST starts at midnight): the day starts at the transition
    r = resolve_window("today", ms("2026-03-08T12:00:00+00:00"), havana)
    assert r.start == ms("2026-03-08T05:00:00+00:00")


def test_range_ending_too_far_ahead_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """A `to` 1000 years ahead used to be decomposed into 8.7 million hour buckets (8 s, 334 MiB)
    before anything noticed: it is refused by arithmetic, no bucket is ever listed."""
    import stream.kpi.windows as windows

    def no_listing(r: Range) -> None:
        raise AssertionError("a refused range must not be decomposed")
    monkeypatch.setattr(windows, "decompose", no_listing)
    now = ms("2026-11-20T09:15:00+00:00")
    thousand_years = now + 1000 * 365 * DAY_MS
    with pytest.raises(WindowError, match="ahead"):
        check_range(now - HOUR_MS, thousand_years - thousand_years % MINUTE_MS, now)
    with pytest.raises(WindowError, match="35 days"):
        check_range(now - 10_000 * DAY_MS, now - 9_000 * DAY_MS, now)
    end = now + MAX_AHEAD_MS
    assert check_range(now - HOUR_MS, end, now)
    with pytest.raises(WindowError, match="ahead"):
        check_range(now - HOUR_MS, end + MINUTE_MS, now)


def test_range_longer_than_the_retention_is_refused() -> None:
    now = ms("2026-11-20T09:00:00+00:00")
    with pytest.raises(WindowError, match="35 days"):
        check_range(now - 35 * DAY_MS, now + 10 * MINUTE_MS, now)
    with pytest.raises(WindowError, match="35 days"):
        check_range(now - 400 * DAY_MS, now - 300 * DAY_MS, now)


# -- day buckets and local steps ------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


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

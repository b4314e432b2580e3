"""Windows and bucket decomposition: every window reads exactly its buckets."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from stream.kpi.windows import (
    DAY_MS, HOUR_MS, MINUTE_MS, Range, WindowError, check_range, decompose, local_midnight,
    resolve_window, split_by_minute)

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
    assert len(d.hours) == 719 and len(d.minutes) == 16


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



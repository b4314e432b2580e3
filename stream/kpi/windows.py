"""Windows and buckets: which minute, hour and day buckets make up a window.

Every counter is kept per minute bucket (48 h), per hour bucket (35 days) and per local day of
the center's time zone (400 days; a local day is 23, 24 or 25 h long around a DST change). A
window `[from, to)` is read as whole local days from day buckets, the rest of each end as whole
hours from hour buckets and the minutes left over from minute buckets, so any window costs a
small, bounded number of keys (`docs/history.md`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MINUTE_RETENTION_MS = 49 * HOUR_MS
"""Minute buckets are kept 48 h (plus an hour of slack for the current one)."""
HOUR_RETENTION_MS = 36 * DAY_MS
"""Hour buckets are kept 36 days, so a rolling 30-day window always works."""
DAY_READABLE_MS = 400 * DAY_MS
"""How far back a day bucket can be read: a local day's bucket is kept 400 days after it ends."""
MAX_EVENT_AGE_MS = DAY_READABLE_MS
"""Events older than this are rejected (`too_old`): no bucket would keep them. An event older
than the hour retention but younger than this updates the day buckets only (an import)."""
MAX_RANGE_MS = DAY_READABLE_MS
"""The longest explicit range (13 months and a few days to spare)."""
MINUTE_READABLE_MS = 48 * HOUR_MS
"""How far back a minute bucket can be read: its hash expires 49 h after its hour starts."""
HOUR_READABLE_MS = 35 * DAY_MS
"""How far back an hour bucket can be read (the retention): its hash outlives its day by 37 d."""
MAX_AHEAD_MS = 10 * MINUTE_MS
"""An explicit range may end at most this far after now (the contract's dialer clock skew)."""

ROLLING_MINUTES: dict[str, int] = {
    "5m": 5, "15m": 15, "1h": 60, "8h": 480, "24h": 1440, "30d": 30 * 1440,
}
CALENDAR_WINDOWS = ("today", "yesterday", "week", "last_week", "month", "last_month",
                    "quarter", "last_quarter", "year")
"""Local calendar periods: the current one runs up to now, `last_*` are whole (weeks: Monday)."""
WINDOWS: tuple[str, ...] = (*ROLLING_MINUTES, *CALENDAR_WINDOWS)


class WindowError(ValueError):
    """A window or range that cannot be answered; the message says why (an HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Range:
    """A half-open time range in epoch ms."""

    start: int
    end: int


def floor_to(ms: int, step: int) -> int:
    return ms - ms % step


def minute_of(ts_ms: int) -> int:
    """The start of the minute bucket that contains `ts_ms`."""
    return ts_ms - ts_ms % MINUTE_MS


def local_start(d: date, tz: ZoneInfo) -> int:
    """The first instant (epoch ms) of local date `d`.

    fold=0 is the first 00:00 of a repeated midnight hour (America/Havana ends DST at 01:00
    back to 00:00), and in a zone with no 00:00 (DST starting at midnight) it maps to the
    transition, the day's first instant.
    """
    return int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp() * 1000)


def local_date(ts_ms: int, tz: ZoneInfo) -> date:
    """The local calendar date containing `ts_ms`."""
    return datetime.fromtimestamp(ts_ms / 1000, tz).date()


def local_midnight(now_ms: int, tz: ZoneInfo) -> int:
    """Start of the local calendar day containing `now_ms` (DST-correct via zoneinfo).

    Built from the date, never by replacing the hour of `now`: in the second pass of a repeated
    midnight hour `now` carries fold=1 and would give the second 00:00, an hour late.
    """
    return local_start(local_date(now_ms, tz), tz)


def add_months(d: date, months: int) -> date:
    """The first of the month `months` after (or before) `d`'s month."""
    n = d.year * 12 + d.month - 1 + months
    return date(n // 12, n % 12 + 1, 1)


def calendar_range(window: str, now_ms: int, tz: ZoneInfo) -> Range:
    """A local calendar period: the current day, week (Monday), month, quarter or year up to
    now, or the whole previous day, week, month or quarter."""
    today = local_date(now_ms, tz)
    monday = today - timedelta(days=today.weekday())
    quarter = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    current = {"today": today, "week": monday, "month": today.replace(day=1),
               "quarter": quarter, "year": date(today.year, 1, 1)}
    if window in current:
        return Range(local_start(current[window], tz), now_ms)
    previous = {"yesterday": (today - timedelta(days=1), today),
                "last_week": (monday - timedelta(days=7), monday),
                "last_month": (add_months(today, -1), today.replace(day=1)),
                "last_quarter": (add_months(quarter, -3), quarter)}
    if window in previous:
        start, end = previous[window]
        return Range(local_start(start, tz), local_start(end, tz))
    raise WindowError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)}")


def resolve_window(window: str, now_ms: int, tz: ZoneInfo) -> Range:
    """A named window ending at `now_ms` (or the whole previous calendar period).

    A rolling window of N minutes covers the last N minute buckets, the current (partial) one
    included. A window longer than the minute retention (30d) is N minutes of whole hour
    buckets, the current one included: the range then ends at the end of the current hour (its
    bucket holds everything so far), so it is exactly 30 × 24 h, never 719 h and a bit.
    """
    if window in CALENDAR_WINDOWS:
        return calendar_range(window, now_ms, tz)
    minutes = ROLLING_MINUTES.get(window)
    if minutes is None:
        raise WindowError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)}")
    if minutes * MINUTE_MS > MINUTE_READABLE_MS:
        end = floor_to(now_ms, HOUR_MS) + HOUR_MS
        return Range(end - minutes * MINUTE_MS, end)
    return Range(minute_of(now_ms) - (minutes - 1) * MINUTE_MS, now_ms)


def check_range(start: int, end: int, now_ms: int, tz: ZoneInfo | None = None) -> Range:
    """An explicit `[from, to)` range, refused (WindowError) unless the kept buckets answer it
    exactly. The length is checked first, so an absurd range costs nothing before it is
    refused. `tz`: the center's zone, whose local days the day buckets hold (None: no day
    buckets, ranges up to the hour retention)."""
    if end <= start:
        raise WindowError("'to' must be after 'from'")
    if start % MINUTE_MS or end % MINUTE_MS:
        raise WindowError("'from' and 'to' must be aligned to whole minutes (the bucket size)")
    if end > now_ms + MAX_AHEAD_MS:
        raise WindowError("'to' is more than 10 minutes ahead of now: nothing can be counted there")
    longest = MAX_RANGE_MS if tz is not None else HOUR_READABLE_MS
    if end - start > longest:
        raise WindowError(f"a range may be at most {longest // DAY_MS} days long "
                          "(the retention of " + ("day" if tz is not None else "hour") + " buckets)")
    return check_readable(Range(start, end), now_ms, tz)


def check_readable(r: Range, now_ms: int, tz: ZoneInfo | None = None) -> Range:
    """`r` if every bucket `decompose(r, tz)` reads is still kept at `now_ms`, else WindowError.

    Day buckets are kept 400 days, hour buckets 35 days, minute buckets 48 h: a range reaching
    further back than 35 days can be answered only where it starts and ends on local midnights,
    one further back than 48 h only where it starts and ends on whole hours (or midnights).
    Reading an expired bucket would answer short without saying so, so such a range is refused.
    """
    oldest = DAY_READABLE_MS if tz is not None else HOUR_READABLE_MS
    if r.start < now_ms - oldest:
        raise WindowError(f"'from' is older than the {oldest // DAY_MS}-day retention of "
                          + ("day" if tz is not None else "hour") + " buckets")
    if tz is None:  # arithmetic only: an accepted range is not listed here
        d = Decomposition((m,) if (m := _oldest_minute(r)) is not None else (), ())
    else:  # at most 400 days by now, a few hundred local days to list
        d = decompose(r, tz)
    if d.hours and d.hours[0] < now_ms - HOUR_READABLE_MS:
        raise WindowError(
            "where a range lies more than 35 days back it must start and end on a local midnight "
            f"of {tz} (day buckets are kept 400 days, hour buckets 35 days); this one needs the "
            f"hour bucket of {d.hours[0]} (epoch ms)")
    if d.minutes and d.minutes[0] < now_ms - MINUTE_READABLE_MS:
        raise WindowError(
            "where a range lies more than 48 h back it must start and end on a whole hour "
            "(minute buckets are kept 48 h, hour buckets 35 days); this one needs the minute "
            f"buckets from {d.minutes[0]} (epoch ms)")
    return r


class LocalDay(NamedTuple):
    """A day bucket: its local month (`YYYY-MM`, the month index), its day of the month, and its
    local date (`YYYY-MM-DD`, the day hash)."""

    month: str
    day: int

    @property
    def date(self) -> str:
        return f"{self.month}-{self.day:02d}"


@lru_cache(maxsize=65_536)
def _local_day(minute_ms: int, tz: ZoneInfo) -> LocalDay:
    d = local_date(minute_ms, tz)
    return LocalDay(f"{d.year:04d}-{d.month:02d}", d.day)


def local_day_of(ts_ms: int, tz: ZoneInfo) -> LocalDay:
    """The day bucket holding `ts_ms` (cached per minute: a batch has few distinct minutes)."""
    return _local_day(minute_of(ts_ms), tz)


@dataclass(frozen=True, slots=True)
class Decomposition:
    """Which buckets make up a range: minute, hour and day buckets (each a bucket start; day
    buckets are the first instants of local days)."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...] = ()


def whole_local_days(r: Range, tz: ZoneInfo) -> tuple[int, ...]:
    """The starts of the local days lying wholly inside `r` (bounded: a range is at most 400
    days long by the time it is read)."""
    d = local_date(r.start, tz)
    first = local_start(d, tz)
    if first < r.start:
        d += timedelta(days=1)
    starts: list[int] = []
    while True:
        start, end = local_start(d, tz), local_start(d + timedelta(days=1), tz)
        if end > r.end:
            return tuple(starts)
        starts.append(start)
        d += timedelta(days=1)


@lru_cache(maxsize=8192)
def decompose(r: Range, tz: ZoneInfo | None = None) -> Decomposition:
    """Whole local days from day buckets (with `tz`), whole hours of the rest from hour
    buckets, the ragged ends from minute buckets.

    The end is rounded up to the minute: the bucket holding `end - 1` is read whole, which is
    what "a live window ends at the query time" means for minute buckets. Cached (pure): a
    series checks and then reads each point's decomposition.
    """
    days = whole_local_days(r, tz) if tz is not None else ()
    if not days:
        return _by_hours(r)
    last_end = local_start(local_date(days[-1], tz) + timedelta(days=1), tz)  # type: ignore[arg-type]
    head = _by_hours(Range(r.start, days[0])) if r.start < days[0] else Decomposition((), ())
    tail = _by_hours(Range(last_end, r.end)) if last_end < r.end else Decomposition((), ())
    return Decomposition(head.minutes + tail.minutes, head.hours + tail.hours, days)


def _oldest_minute(r: Range) -> int | None:
    """The oldest minute bucket `_by_hours(r)` reads (None: hour buckets only), computed
    without listing the buckets."""
    end = floor_to(r.end - 1, MINUTE_MS) + MINUTE_MS
    first_hour = -(-r.start // HOUR_MS) * HOUR_MS
    last_hour = floor_to(end, HOUR_MS)
    if first_hour >= last_hour or r.start < first_hour:
        return r.start
    return last_hour if last_hour < end else None


def _by_hours(r: Range) -> Decomposition:
    end = floor_to(r.end - 1, MINUTE_MS) + MINUTE_MS
    first_hour = -(-r.start // HOUR_MS) * HOUR_MS
    last_hour = floor_to(end, HOUR_MS)
    if first_hour >= last_hour:
        return Decomposition(tuple(range(r.start, end, MINUTE_MS)), ())
    return Decomposition(
        minutes=(*range(r.start, first_hour, MINUTE_MS), *range(last_hour, end, MINUTE_MS)),
        hours=tuple(range(first_hour, last_hour, HOUR_MS)),
    )


def overlap_ms(a_start: int, a_end: int, b_start: int, b_end: int) -> int:
    """Length of the intersection of two half-open ranges."""
    return max(0, min(a_end, b_end) - max(a_start, b_start))


def split_by_minute(start: int, end: int) -> list[tuple[int, int]]:
    """An interval as (minute bucket start, ms in that bucket) pieces, for agent time."""
    pieces = []
    t = start
    while t < end:
        bucket = minute_of(t)
        nxt = min(bucket + MINUTE_MS, end)
        pieces.append((bucket, nxt - t))
        t = nxt
    return pieces
